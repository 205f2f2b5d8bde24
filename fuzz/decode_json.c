/*
 * Fuzz target: the `json` payload format through the whole ingest
 * pipeline (fuzz.h: the topic on the first line, the payload after it),
 * with a measurement member, tag members, strings, declared types and
 * both ways of naming the measurement from the topic. Any verdict is fine;
 * a crash, a sanitizer report or a verdict that contradicts itself is not.
 */
#include "fuzz/fuzz.h"

static const char config_text[] =
    "{\"file\": {},\n"
    " \"limits\": {\"max_past\": \"36600d\", \"max_future\": \"366d\"},\n"
    " \"subscriptions\": [\n"
    "  {\"name\": \"k\", \"topic\": \"k/{district}\", \"format\": \"json\",\n"
    "   \"measurement\": \"kpi\", \"measurement_key\": \"m\",\n"
    "   \"tag_keys\": [\"site\", \"system\"], \"allow_strings\": true,\n"
    "   \"tags\": {\"source\": \"fuzz\"},\n"
    "   \"types\": {\"received\": \"integer\", \"share\": \"float\",\n"
    "             \"ok\": \"boolean\", \"note\": \"string\"}},\n"
    "  {\"name\": \"m\", \"topic\": \"m/{district}/{measurement}\",\n"
    "   \"format\": \"json\", \"time_key\": \"ts\", \"time_unit\": \"ms\"},\n"
    "  {\"name\": \"r\", \"topic\": \"r/#\", \"format\": \"json\",\n"
    "   \"time_unit\": \"rfc3339\"},\n"
    "  {\"name\": \"any\", \"topic\": \"#\", \"format\": \"json\",\n"
    "   \"measurement\": \"fuzz\", \"time_unit_numbers\": \"ns\"}\n"
    " ]}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return fuzz_decoder_init(config_text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_decoder_one(data, size);
}
