/*
 * Fuzz target: the `senml` payload format (SenML JSON, RFC 8428) through
 * the whole ingest pipeline (fuzz.h: the topic on the first line, the
 * payload after it), with the measurement from the topic or the
 * subscription. Any verdict is fine; a crash, a sanitizer report or a
 * verdict that contradicts itself is not.
 */
#include "core/log.h"
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

static struct config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  cfg = fuzz_config(config_text);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_msg m;
  if (fuzz_msg_split(data, size, &m)) {
    return 0;
  }
  struct ingest_result res;
  fuzz_ingest(cfg, &m, NULL, NULL, &res);
  fuzz_msg_free(&m);
  return 0;
}
