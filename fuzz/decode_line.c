/*
 * Fuzz target: the `line` payload format (InfluxDB line protocol, parsed
 * by core/lp.c) through the whole ingest pipeline (fuzz.h: the topic on the
 * first line, the payload after it), with topic tags that win over the
 * payload's, timestamps in ns and in s, and declared types. Any verdict is
 * fine; a crash, a sanitizer report or a verdict that contradicts itself is
 * not.
 */
#include "fuzz/fuzz.h"

static const char config_text[] =
    "{\"file\": {},\n"
    " \"limits\": {\"max_past\": \"36600d\", \"max_future\": \"366d\"},\n"
    " \"subscriptions\": [\n"
    "  {\"name\": \"l\", \"topic\": \"l/{district}\", \"format\": \"line\",\n"
    "   \"tags\": {\"source\": \"fuzz\"}, \"types\": {\"received\": "
    "\"integer\"}},\n"
    "  {\"name\": \"s\", \"topic\": \"s/{district}/{system}\", \"format\": "
    "\"line\",\n"
    "   \"time_unit\": \"s\"},\n"
    "  {\"name\": \"any\", \"topic\": \"#\", \"format\": \"line\"}\n"
    " ]}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return fuzz_decoder_init(config_text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_decoder_one(data, size);
}
