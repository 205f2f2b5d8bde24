/*
 * Fuzz target: the `value` payload format (one bare number or boolean)
 * through the whole ingest pipeline (fuzz.h: the topic on the first line,
 * the payload after it), with the field named by a {field} capture, by the
 * subscription, or by default, and declared types to coerce to. Any
 * verdict is fine; a crash, a sanitizer report or a verdict that
 * contradicts itself is not.
 */
#include "fuzz/fuzz.h"

static const char config_text[] =
    "{\"file\": {},\n"
    " \"limits\": {\"max_past\": \"36600d\", \"max_future\": \"366d\"},\n"
    " \"subscriptions\": [\n"
    "  {\"name\": \"f\", \"topic\": \"f/{district}/{measurement}/{field}\",\n"
    "   \"format\": \"value\", \"tags\": {\"source\": \"fuzz\"}},\n"
    "  {\"name\": \"d\", \"topic\": \"d/{district}\", \"format\": \"value\",\n"
    "   \"measurement\": \"sensors\", \"field\": \"temperature\",\n"
    "   \"types\": {\"temperature\": \"float\"}},\n"
    "  {\"name\": \"i\", \"topic\": \"i/{district}\", \"format\": \"value\",\n"
    "   \"measurement\": \"counts\", \"types\": {\"value\": \"integer\"}},\n"
    "  {\"name\": \"any\", \"topic\": \"#\", \"format\": \"value\", "
    "\"measurement\": \"fuzz\"}\n"
    " ]}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return fuzz_decoder_init(config_text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_decoder_one(data, size);
}
