/*
 * The alert state machine on its own, driven by scripts of evaluations on a
 * virtual clock: each step gives the time, the truth of each level's
 * condition, of the guard and of the clear condition, and the transition
 * expected ("" for none) with the state after it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "rules/alert.h"
#include "rules/calendar.h"

#define MIN(n) ((int64_t)(n) * 60 * NS_PER_SEC)
/* 2021-03-01 00:00 +07:00 (a Monday), so that 0 is never a time. */
#define BASE (INT64_C(1614531600) * NS_PER_SEC)

struct step {
  int min;          /* minutes after BASE */
  const char *fire; /* one character per level: T, F or M (missing) */
  char guard;       /* 0 or T: true; F; M */
  char clear;       /* 0 or T: true; F; M */
  bool off;         /* outside working time */
  const char *want; /* "prev>state@level", or "" for no transition */
  enum alert_state after;
};

static enum expr_truth truth(char c) {
  switch (c) {
    case 'F':
      return EXPR_FALSE;
    case 'M':
      return EXPR_MISSING;
    default:
      return EXPR_TRUE;
  }
}

static void run(const char *name, const struct alert_params *p,
                const struct step *steps, size_t n) {
  struct alert a;
  alert_init(&a);
  for (size_t i = 0; i < n; i++) {
    const struct step *s = &steps[i];
    struct alert_input in = {
        .t_ns = BASE + MIN(s->min),
        .off = s->off,
        .guard = truth(s->guard),
        .nlevels = strlen(s->fire),
        .clear = truth(s->clear),
    };
    for (size_t k = 0; k < in.nlevels; k++) {
      in.fire[k] = truth(s->fire[k]);
    }
    struct alert_transition tr;
    char got[64] = "";
    if (alert_step(&a, p, &in, &tr)) {
      snprintf(got, sizeof got, "%s>%s@%d", alert_state_name(tr.prev),
               alert_state_name(tr.state), tr.level);
      cr_expect_eq(tr.t_ns, in.t_ns);
      cr_expect_eq(tr.severity_changed,
                   tr.prev == ALERT_FIRING && tr.state == ALERT_FIRING,
                   "%s step %zu", name, i);
    }
    cr_expect_str_eq(got, s->want, "%s: step %zu (t=%dm): got '%s'", name, i,
                     s->min, got);
    cr_expect_eq(a.state, s->after, "%s: step %zu: state %s", name, i,
                 alert_state_name(a.state));
  }
}

#define RUN(p, steps) run(#steps, p, steps, sizeof steps / sizeof steps[0])

Test(alert, fires_at_once_without_for_and_resolves_when_false) {
  struct alert_params p = {0};
  static const struct step s[] = {
      {0, "F", 0, 0, false, "", ALERT_INACTIVE},
      {1, "T", 0, 0, false, "inactive>firing@1", ALERT_FIRING},
      {2, "T", 0, 0, false, "", ALERT_FIRING},
      {3, "F", 0, 0, false, "firing>resolved@1", ALERT_INACTIVE},
      {4, "F", 0, 0, false, "", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, pending_for_the_whole_for_then_firing) {
  struct alert_params p = {.for_ns = MIN(5)};
  static const struct step s[] = {
      {0, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {4, "T", 0, 0, false, "", ALERT_PENDING},
      {5, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
      {6, "F", 0, 0, false, "firing>resolved@1", ALERT_INACTIVE},
      {7, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {8, "F", 0, 0, false, "pending>inactive@0", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, one_false_evaluation_resets_pending_without_tolerance) {
  struct alert_params p = {.for_ns = MIN(5)};
  static const struct step s[] = {
      {0, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {3, "F", 0, 0, false, "pending>inactive@0", ALERT_INACTIVE},
      {4, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {8, "T", 0, 0, false, "", ALERT_PENDING},
      {9, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
  };
  RUN(&p, s);
}

Test(alert, a_false_spell_shorter_than_the_tolerance_keeps_pending) {
  struct alert_params p = {.for_ns = MIN(5), .tolerance_ns = MIN(2)};
  static const struct step s[] = {
      {0, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {1, "F", 0, 0, false, "", ALERT_PENDING},
      {2, "M", 0, 0, false, "", ALERT_PENDING},
      {3, "T", 0, 0, false, "", ALERT_PENDING},
      /* The interruption counts towards for: firing 5 min after 0. */
      {5, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
  };
  RUN(&p, s);
  static const struct step t[] = {
      {0, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {1, "F", 0, 0, false, "", ALERT_PENDING},
      {2, "F", 0, 0, false, "", ALERT_PENDING},
      {3, "F", 0, 0, false, "pending>inactive@0", ALERT_INACTIVE},
  };
  RUN(&p, t);
}

Test(alert, keep_firing_for_outlives_the_condition) {
  struct alert_params p = {.keep_firing_for_ns = MIN(3)};
  static const struct step s[] = {
      {0, "T", 0, 0, false, "inactive>firing@1", ALERT_FIRING},
      {1, "F", 0, 0, false, "", ALERT_FIRING},
      {2, "T", 0, 0, false, "", ALERT_FIRING},
      {3, "F", 0, 0, false, "", ALERT_FIRING},
      {5, "F", 0, 0, false, "", ALERT_FIRING},
      {6, "F", 0, 0, false, "firing>resolved@1", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, hysteresis_keeps_firing_until_the_clear_condition_holds) {
  /* fire: share < 28%, clear: share > 30%. */
  struct alert_params p = {0};
  static const struct step s[] = {
      {0, "T", 0, 'F', false, "inactive>firing@1", ALERT_FIRING},
      /* 29%: no longer below 28, not yet above 30. */
      {1, "F", 0, 'F', false, "", ALERT_FIRING},
      /* A clear that cannot be evaluated keeps the alert. */
      {2, "F", 0, 'M', false, "", ALERT_FIRING},
      {3, "F", 0, 'T', false, "firing>resolved@1", ALERT_INACTIVE},
      /* Not firing: the clear condition does not matter. */
      {4, "F", 0, 'F', false, "", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, levels_move_up_and_down_as_kapacitor_does) {
  struct alert_params p = {0};
  /* Level 1 warning (< 30%), level 2 critical (< 15%). */
  static const struct step s[] = {
      {0, "TF", 0, 0, false, "inactive>firing@1", ALERT_FIRING},
      {1, "TT", 0, 0, false, "firing>firing@2", ALERT_FIRING},
      {2, "TT", 0, 0, false, "", ALERT_FIRING},
      {3, "TF", 0, 0, false, "firing>firing@1", ALERT_FIRING},
      {4, "FF", 0, 0, false, "firing>resolved@1", ALERT_INACTIVE},
      /* Straight to critical; down to nothing at once. */
      {5, "TT", 0, 0, false, "inactive>firing@2", ALERT_FIRING},
      {6, "FF", 0, 0, false, "firing>resolved@2", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, a_level_with_a_clear_condition_holds_until_it_clears) {
  struct alert_params p = {0};
  static const struct step s[] = {
      {0, "TT", 0, 'F', false, "inactive>firing@2", ALERT_FIRING},
      /* Critical no longer true, its clear not yet: stays critical. */
      {1, "TF", 0, 'F', false, "", ALERT_FIRING},
      /* Cleared: down to the highest level still true. */
      {2, "TF", 0, 'T', false, "firing>firing@1", ALERT_FIRING},
  };
  RUN(&p, s);
}

Test(alert, missing_raises_nodata_of_the_same_alert_by_default) {
  struct alert_params p = {.for_ns = MIN(2)};
  static const struct step s[] = {
      {0, "M", 0, 0, false, "inactive>nodata@0", ALERT_NODATA},
      {1, "M", 0, 0, false, "", ALERT_NODATA},
      {2, "T", 0, 0, false, "nodata>pending@1", ALERT_PENDING},
      {3, "M", 0, 0, false, "pending>nodata@0", ALERT_NODATA},
      {4, "F", 0, 0, false, "nodata>inactive@0", ALERT_INACTIVE},
      {5, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {7, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
      {8, "M", 0, 0, false, "firing>nodata@1", ALERT_NODATA},
  };
  RUN(&p, s);
}

Test(alert, missing_keeps_the_state_when_the_rule_says_keep) {
  struct alert_params p = {.missing = ALERT_MISSING_KEEP, .for_ns = MIN(2)};
  static const struct step s[] = {
      {0, "M", 0, 0, false, "", ALERT_INACTIVE},
      {1, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      /* Missing neither confirms nor cancels: no firing on no data. */
      {4, "M", 0, 0, false, "", ALERT_PENDING},
      {5, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
      {6, "M", 0, 0, false, "", ALERT_FIRING},
      {60, "M", 0, 0, false, "", ALERT_FIRING},
      {61, "F", 0, 0, false, "firing>resolved@1", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, missing_is_a_false_condition_when_the_rule_says_ok) {
  struct alert_params p = {.missing = ALERT_MISSING_OK, .for_ns = MIN(2)};
  static const struct step s[] = {
      {0, "M", 0, 0, false, "", ALERT_INACTIVE},
      {1, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {2, "M", 0, 0, false, "pending>inactive@0", ALERT_INACTIVE},
      {3, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {5, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
      {6, "M", 0, 0, false, "firing>resolved@1", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, a_failed_guard_is_insufficient_data_not_a_breach) {
  struct alert_params p = {0};
  static const struct step s[] = {
      {0, "T", 'F', 0, false, "inactive>insufficient@0", ALERT_INSUFFICIENT},
      {1, "F", 'F', 0, false, "", ALERT_INSUFFICIENT},
      {2, "T", 'T', 0, false, "insufficient>firing@1", ALERT_FIRING},
      {3, "T", 'F', 0, false, "firing>insufficient@1", ALERT_INSUFFICIENT},
      {4, "F", 'T', 0, false, "insufficient>inactive@0", ALERT_INACTIVE},
      /* A guard that cannot be evaluated is no data, not insufficient. */
      {5, "T", 'M', 0, false, "inactive>nodata@0", ALERT_NODATA},
      {6, "M", 'F', 0, false, "nodata>insufficient@0", ALERT_INSUFFICIENT},
  };
  RUN(&p, s);
}

Test(alert, outside_working_time_nothing_starts_and_firing_stays) {
  struct alert_params p = {.for_ns = MIN(5)};
  static const struct step s[] = {
      {0, "T", 0, 0, true, "", ALERT_INACTIVE},
      {1, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {2, "F", 0, 0, true, "", ALERT_PENDING},
      {6, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
      /* A holiday does not resolve it. */
      {7, "F", 0, 0, true, "", ALERT_FIRING},
      {600, "M", 0, 0, true, "", ALERT_FIRING},
      {601, "F", 0, 0, false, "firing>resolved@1", ALERT_INACTIVE},
  };
  RUN(&p, s);
}

Test(alert, missing_data_during_warmup_keeps_the_state) {
  struct alert_params p = {.warmup_until_ns = BASE + MIN(10)};
  struct alert a;
  alert_init(&a);
  a.state = ALERT_FIRING;
  a.level = 1;
  struct alert_input in = {.t_ns = BASE + MIN(1), .nlevels = 1,
                           .guard = EXPR_TRUE, .clear = EXPR_TRUE,
                           .fire = {EXPR_MISSING}};
  struct alert_transition tr;
  cr_expect_not(alert_step(&a, &p, &in, &tr));
  cr_expect_eq(a.state, ALERT_FIRING);
  cr_expect_eq(alert_deadline(&a, &p), BASE + MIN(10));
  in.t_ns = BASE + MIN(10);
  cr_expect(alert_step(&a, &p, &in, &tr));
  cr_expect_eq(tr.state, ALERT_NODATA);
  /* False data is not missing: it resolves even in the warm-up. */
  alert_init(&a);
  a.state = ALERT_FIRING;
  a.level = 1;
  in.t_ns = BASE + MIN(2);
  in.fire[0] = EXPR_FALSE;
  cr_expect(alert_step(&a, &p, &in, &tr));
  cr_expect_eq(tr.state, ALERT_RESOLVED);
}

Test(alert, for_counts_only_working_time_for_working_time_rules) {
  struct calendar *cal = calendar_new(NULL, NULL);
  cr_assert_not_null(cal);
  struct alert_params p = {.for_ns = MIN(30), .working = cal};
  /* BASE is Monday 00:00: 11:20 is minute 680, 13:30 is 810. */
  static const struct step s[] = {
      {680, "T", 0, 0, false, "inactive>pending@1", ALERT_PENDING},
      {700, "T", 0, 0, true, "", ALERT_PENDING},
      {810, "T", 0, 0, false, "", ALERT_PENDING},
      {829, "T", 0, 0, false, "", ALERT_PENDING},
      {830, "T", 0, 0, false, "pending>firing@1", ALERT_FIRING},
  };
  RUN(&p, s);
  struct alert a;
  alert_init(&a);
  a.state = ALERT_PENDING;
  a.level = 1;
  a.pending_since_ns = BASE + MIN(680);
  a.last_eval_ns = a.pending_since_ns;
  cr_expect_eq(alert_deadline(&a, &p), BASE + MIN(830));
  cr_expect_eq(alert_elapsed(&p, BASE + MIN(680), BASE + MIN(830)),
               MIN(30));
  calendar_free(cal);
}

Test(alert, deadlines_are_the_ends_of_for_tolerance_and_keep_firing) {
  struct alert_params p = {.for_ns = MIN(5),
                           .tolerance_ns = MIN(2),
                           .keep_firing_for_ns = MIN(3)};
  struct alert a;
  alert_init(&a);
  cr_expect_eq(alert_deadline(&a, &p), INT64_MAX);
  a.state = ALERT_PENDING;
  a.pending_since_ns = BASE;
  a.last_eval_ns = BASE;
  cr_expect_eq(alert_deadline(&a, &p), BASE + MIN(5));
  a.false_since_ns = BASE + MIN(1);
  cr_expect_eq(alert_deadline(&a, &p), BASE + MIN(3));
  a.state = ALERT_FIRING;
  a.false_since_ns = 0;
  cr_expect_eq(alert_deadline(&a, &p), INT64_MAX);
  a.keep_since_ns = BASE + MIN(7);
  cr_expect_eq(alert_deadline(&a, &p), BASE + MIN(10));
}

Test(alert, names_round_trip) {
  for (int s = ALERT_INACTIVE; s <= ALERT_INSUFFICIENT; s++) {
    enum alert_state back;
    cr_expect_eq(alert_state_parse(alert_state_name((enum alert_state)s),
                                   &back),
                 IOCD_OK);
    cr_expect_eq((int)back, s);
  }
  for (int m = ALERT_MISSING_NODATA; m <= ALERT_MISSING_OK; m++) {
    enum alert_missing back;
    cr_expect_eq(alert_missing_parse(alert_missing_name((enum alert_missing)m),
                                     &back),
                 IOCD_OK);
    cr_expect_eq((int)back, m);
  }
  enum alert_state s;
  cr_expect_eq(alert_state_parse("fire", &s), IOCD_EINVAL);
  cr_expect_str_eq(alert_trigger_name(ALERT_BY_TICK), "tick");
}
