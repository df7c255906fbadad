//! Metric alarm evaluation, as the CloudWatch user guide describes it ("Configuring how
//! CloudWatch alarms treat missing data"): CloudWatch reads an *evaluation range* longer than
//! EvaluationPeriods (here N + 2 periods, which is the guide's 5 for N = 3), evaluates the N most
//! recent real datapoints when there are enough, and otherwise fills missing ones with the
//! TreatMissingData setting, using missing datapoints as few times as possible. M of N: ALARM
//! when at least DatapointsToAlarm of the N evaluated datapoints breach, else OK.

use super::super::actions::AlarmState;

/// TreatMissingData.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

impl Missing {
    pub fn parse(s: Option<&str>) -> Option<Missing> {
        Some(match s {
            None | Some("missing") => Missing::Missing,
            Some("ignore") => Missing::Ignore,
            Some("breaching") => Missing::Breaching,
            Some("notBreaching") => Missing::NotBreaching,
            _ => return None,
        })
    }
}

/// The four static-threshold comparison operators (the anomaly-band ones need an anomaly
/// detection model, which this emulator does not build: PutMetricAlarm refuses them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Lt,
    Le,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "GreaterThanOrEqualToThreshold" => Op::Ge,
            "GreaterThanThreshold" => Op::Gt,
            "LessThanThreshold" => Op::Lt,
            "LessThanOrEqualToThreshold" => Op::Le,
            _ => return None,
        })
    }

    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Ge => value >= threshold,
            Op::Gt => value > threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    /// How StateReason words the comparison.
    pub fn words(self) -> &'static str {
        match self {
            Op::Ge => "greater than or equal to",
            Op::Gt => "greater than",
            Op::Lt => "less than",
            Op::Le => "less than or equal to",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// DatapointsToAlarm (M).
    pub m: usize,
    /// EvaluationPeriods (N).
    pub n: usize,
    pub missing: Missing,
    pub op: Op,
    pub threshold: f64,
}

impl Rule {
    /// Periods read per evaluation.
    pub fn range(&self) -> usize {
        self.n + 2
    }
}

/// One period of the evaluation range: its start (epoch seconds) and value, if any.
pub type Slot = (f64, Option<f64>);

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// None: keep the current state (TreatMissingData ignore).
    pub state: Option<AlarmState>,
    /// The real datapoints evaluated, newest first.
    pub evaluated: Vec<(f64, f64)>,
    /// How many of the N evaluated datapoints (real or filled) breach.
    pub breaching: usize,
    /// Missing datapoints filled in with the TreatMissingData setting.
    pub filled: usize,
}

/// Evaluates `slots` (oldest first, the newest last; at most [`Rule::range`] of them).
pub fn evaluate(rule: &Rule, slots: &[Slot]) -> Verdict {
    let real: Vec<(f64, f64)> = slots
        .iter()
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect();
    let newest_first =
        |pts: &[(f64, f64)]| -> Vec<(f64, f64)> { pts.iter().rev().copied().collect() };
    if real.len() >= rule.n {
        let evaluated = newest_first(&real[real.len() - rule.n..]);
        let breaching = count_breaching(rule, &evaluated);
        let state = if breaching >= rule.m {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        };
        return Verdict {
            state: Some(state),
            evaluated,
            breaching,
            filled: 0,
        };
    }
    let evaluated = newest_first(&real);
    let real_breaching = count_breaching(rule, &evaluated);
    let fill = rule.n - real.len();
    match rule.missing {
        Missing::Breaching | Missing::NotBreaching => {
            let filled_breaching = if rule.missing == Missing::Breaching {
                fill
            } else {
                0
            };
            let breaching = real_breaching + filled_breaching;
            let state = if breaching >= rule.m {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            };
            Verdict {
                state: Some(state),
                evaluated,
                breaching,
                filled: fill,
            }
        }
        Missing::Missing | Missing::Ignore => {
            // Missing datapoints count as neither: enough breaching real ones alarm, any
            // non-breaching one is OK, and with only breaching ones (fewer than M) the state
            // cannot be decided, except (the guide's sixth example) when the breaching data
            // reaches back beyond the N most recent periods while these are all missing.
            let state = if real_breaching >= rule.m {
                Some(AlarmState::Alarm)
            } else if real_breaching < real.len() {
                Some(AlarmState::Ok)
            } else if rule.missing == Missing::Ignore {
                None
            } else if !real.is_empty() && recent_all_missing(rule, slots) {
                Some(AlarmState::Alarm)
            } else {
                Some(AlarmState::InsufficientData)
            };
            Verdict {
                state,
                evaluated,
                breaching: real_breaching,
                filled: 0,
            }
        }
    }
}

fn count_breaching(rule: &Rule, pts: &[(f64, f64)]) -> usize {
    pts.iter()
        .filter(|(_, v)| rule.op.breaches(*v, rule.threshold))
        .count()
}

/// The N most recent periods hold no datapoint.
fn recent_all_missing(rule: &Rule, slots: &[Slot]) -> bool {
    slots.iter().rev().take(rule.n).all(|(_, v)| v.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlarmState::*;

    /// "0 - X - X" → slots, oldest first: 0 is 10 (not breaching), X is 90 (breaching).
    fn slots(pattern: &str) -> Vec<Slot> {
        pattern
            .split_whitespace()
            .enumerate()
            .map(|(i, c)| {
                let t = 60.0 * i as f64;
                match c {
                    "0" => (t, Some(10.0)),
                    "X" => (t, Some(90.0)),
                    _ => (t, None),
                }
            })
            .collect()
    }

    fn rule(m: usize, n: usize, missing: Missing) -> Rule {
        Rule {
            m,
            n,
            missing,
            op: Op::Gt,
            threshold: 50.0,
        }
    }

    /// One row of the guide's tables: the state for MISSING, IGNORE (None = retain current
    /// state), BREACHING and NOT BREACHING.
    fn row(m: usize, pattern: &str, expected: [Option<AlarmState>; 4]) {
        let modes = [
            Missing::Missing,
            Missing::Ignore,
            Missing::Breaching,
            Missing::NotBreaching,
        ];
        for (mode, want) in modes.iter().zip(expected) {
            let got = evaluate(&rule(m, 3, *mode), &slots(pattern)).state;
            assert_eq!(got, want, "{m} of 3, {pattern}, {mode:?}");
        }
    }

    #[test]
    fn three_of_three_matches_the_user_guide_table() {
        let (ok, alarm, insufficient) = (Some(Ok), Some(Alarm), Some(InsufficientData));
        row(3, "0 - X - X", [ok, ok, ok, ok]);
        row(3, "0 - - - -", [ok, ok, ok, ok]);
        row(3, "- - - - -", [insufficient, None, alarm, ok]);
        row(3, "0 X X - X", [alarm, alarm, alarm, alarm]);
        row(3, "- - - - X", [insufficient, None, alarm, ok]);
        row(3, "X - - - -", [alarm, None, alarm, ok]);
    }

    #[test]
    fn two_of_three_matches_the_user_guide_table() {
        let (ok, alarm, insufficient) = (Some(Ok), Some(Alarm), Some(InsufficientData));
        row(2, "0 - X - X", [alarm, alarm, alarm, alarm]);
        row(2, "0 0 X 0 X", [alarm, alarm, alarm, alarm]);
        row(2, "0 - X - -", [ok, ok, alarm, ok]);
        row(2, "- - - - 0", [ok, ok, alarm, ok]);
        row(2, "- - - - X", [insufficient, None, alarm, ok]);
    }

    #[test]
    fn m_of_n_uses_the_most_recent_n_real_datapoints() {
        // 2 of 4: only the newest four count.
        let r = rule(2, 4, Missing::Missing);
        let v = evaluate(&r, &slots("X X 0 0 0 X"));
        assert_eq!(v.state, Some(Ok));
        assert_eq!(v.breaching, 1);
        assert_eq!(v.evaluated.len(), 4);
        assert_eq!(v.evaluated[0], (300.0, 90.0), "newest first");
        let v = evaluate(&r, &slots("0 0 X 0 0 X X"));
        assert_eq!(v.state, Some(Alarm));
        // 1 of 1 is the plain threshold alarm.
        let r = rule(1, 1, Missing::Missing);
        assert_eq!(evaluate(&r, &slots("X - 0")).state, Some(Ok));
        assert_eq!(evaluate(&r, &slots("0 - X")).state, Some(Alarm));
    }

    #[test]
    fn comparison_operators() {
        assert!(Op::Ge.breaches(50.0, 50.0));
        assert!(!Op::Gt.breaches(50.0, 50.0));
        assert!(Op::Le.breaches(50.0, 50.0));
        assert!(!Op::Lt.breaches(50.0, 50.0));
        assert!(Op::Lt.breaches(44.9, 45.0));
        assert_eq!(Op::parse("LessThanLowerThreshold"), None);
        assert_eq!(Missing::parse(Some("bogus")), None);
        assert_eq!(Missing::parse(None), Some(Missing::Missing));
    }
}
