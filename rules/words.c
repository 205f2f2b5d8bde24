/*
 * The engine's own words, in the language the province reads: the reason
 * an alert changed ("why"), the built-in broker alert's texts. Vietnamese
 * by default, English selectable (config "language"). Identifiers that
 * programs read (states, trigger names, label and field names) are not
 * words and are never translated.
 */
#include "rules/engine_int.h"

/* [word][language]: ENGINE_LANG_VI, ENGINE_LANG_EN. */
static const char *const words[ENGINE__WORD_COUNT][2] = {
    [ENGINE__W_SAMPLE] = {"mẫu", "sample"},
    [ENGINE__W_TICK] = {"lượt đánh giá định kỳ", "tick"},
    [ENGINE__W_BROKER] = {"broker", "broker"},
    [ENGINE__W_RESTORE] = {"khôi phục trạng thái", "restore"},
    [ENGINE__W_RELOAD] = {"nạp lại cấu hình", "reload"},
    [ENGINE__W_AT] = {"lúc", "at"},
    [ENGINE__W_NO_DATA] = {"không có dữ liệu", "no data"},
    [ENGINE__W_INSUFFICIENT] = {"chưa đủ dữ liệu: điều kiện tối thiểu",
                                "insufficient data: guard"},
    [ENGINE__W_NOT_MET] = {"không thỏa", "is false"},
    [ENGINE__W_VS] = {"so với", "vs"},
    [ENGINE__W_CONDITION_TRUE] = {"điều kiện đúng", "condition true"},
    [ENGINE__W_CONDITION_FALSE] = {"điều kiện sai", "condition false"},
    [ENGINE__W_VALUE] = {"giá trị", "value"},
    [ENGINE__W_THRESHOLD] = {"ngưỡng", "threshold"},
    [ENGINE__W_SEVERITY] = {"mức", "severity"},
    [ENGINE__W_BROKER_DOWN] = {"iocd không kết nối được MQTT broker",
                               "iocd cannot reach its MQTT broker"},
    [ENGINE__W_BROKER_UP] = {"iocd đã kết nối lại MQTT broker",
                             "iocd reaches its MQTT broker again"},
    [ENGINE__W_BROKER_SUMMARY] = {"iocd không kết nối được MQTT broker: mọi "
                                  "nguồn dữ liệu đều có vẻ im lặng",
                                  "iocd cannot reach its MQTT broker: every "
                                  "feed looks silent"},
    [ENGINE__W_RULE_GONE] = {"quy tắc đã thay đổi hoặc bị xóa",
                             "the rule changed or was removed"},
    [ENGINE__W_WHY_NONE] = {"không thiếu", "none"},
    [ENGINE__W_WHY_NO_SERIES] = {"không có chuỗi dữ liệu", "no series"},
    [ENGINE__W_WHY_STALE] = {"dữ liệu quá cũ", "stale"},
    [ENGINE__W_WHY_EMPTY_WINDOW] = {"không có mẫu trong khoảng thời gian",
                                    "empty window"},
    [ENGINE__W_WHY_TOO_FEW] = {"quá ít mẫu", "too few samples"},
    [ENGINE__W_WHY_NO_PARAM] = {"tham số không có giá trị",
                                "no parameter value"},
    [ENGINE__W_WHY_DIV_ZERO] = {"chia cho 0", "division by zero"},
    [ENGINE__W_WHY_NO_CALENDAR] = {"không có lịch làm việc", "no calendar"},
};

const char *engine__word(enum engine_lang lang, enum engine__word w) {
  int l = lang == ENGINE_LANG_EN ? 1 : 0;
  return (unsigned)w < ENGINE__WORD_COUNT && words[w][l] ? words[w][l] : "?";
}

const char *engine__trigger_word(enum engine_lang lang, enum alert_trigger by) {
  switch (by) {
    case ALERT_BY_SAMPLE:
      return engine__word(lang, ENGINE__W_SAMPLE);
    case ALERT_BY_TICK:
      return engine__word(lang, ENGINE__W_TICK);
    case ALERT_BY_BROKER:
      return engine__word(lang, ENGINE__W_BROKER);
    case ALERT_BY_RESTORE:
      return engine__word(lang, ENGINE__W_RESTORE);
    case ALERT_BY_RELOAD:
      return engine__word(lang, ENGINE__W_RELOAD);
  }
  return "?";
}

const char *engine__why_word(enum engine_lang lang, enum expr_why why) {
  if ((unsigned)why > EXPR_WHY_NO_CALENDAR) {
    return "?";
  }
  return engine__word(lang, (enum engine__word)(ENGINE__W_WHY_NONE + why));
}
