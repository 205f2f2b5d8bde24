/*
 * Fuzz target: the `senml` payload format (SenML JSON, RFC 8428) through
 * the whole ingest pipeline (fuzz.h: the topic on the first line, the
 * payload after it), with the measurement from the topic or the
 * subscription. Any verdict is fine; a crash, a sanitizer report or a
 * verdict that contradicts itself is not.
 */
#include "fuzz/fuzz.h"

static const char config_text[] =
    "{\"file\": {},\n"
    " \"limits\": {\"max_past\": \"36600d\", \"max_future\": \"366d\"},\n"
    " \"subscriptions\": [\n"
    "  {\"name\": \"m\", \"topic\": \"m/{district}/{measurement}\", "
    "\"format\": \"senml\",\n"
    "   \"tags\": {\"source\": \"fuzz\"}},\n"
    "  {\"name\": \"any\", \"topic\": \"#\", \"format\": \"senml\", "
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
