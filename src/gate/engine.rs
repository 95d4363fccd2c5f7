//! One gate on one host as a pure state machine: fed with (time, reading),
//! it says when to look next and whether the gate passed, failed, or needs
//! the operator. The time is a [`Duration`] from any fixed origin (the
//! bake's start), so tests drive it with a made-up clock.
//!
//! [`judge`] makes the reading: what was observed of the host (and, with
//! `compare = others`, of its peers) against the gate's condition.

use std::time::Duration;

use super::{Compare, Condition, NoData, Span};

/// What one look at a gate's source gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A number (NaN counts as no data).
    Value(f64),
    /// An answer without data (an empty vector), and why in words.
    NoData(String),
    /// No answer: the source could not be asked, or answered something
    /// that cannot be judged (several series for one host).
    Error(String),
}

/// The verdict of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Good.
    Pass,
    /// Bad.
    Fail,
    /// No data: counted as `no_data` says.
    NoData,
    /// Could not be evaluated: a failure, or a pause with `no_data = pause`.
    Error,
}

impl Verdict {
    /// `pass`, `fail`, `no-data` or `error`, as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NoData => "no-data",
            Verdict::Error => "error",
        }
    }
}

/// One evaluation, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Its verdict.
    pub verdict: Verdict,
    /// The host's value, when there was one.
    pub value: Option<f64>,
    /// In words: the value against the condition, or why there is none.
    pub detail: String,
}

impl Reading {
    /// A reading with `verdict`, no value, and `detail`.
    pub fn without_value(verdict: Verdict, detail: impl Into<String>) -> Reading {
        Reading {
            verdict,
            value: None,
            detail: detail.into(),
        }
    }
}

/// Judge what was observed of a host (`own`) and, with `compare`, of the
/// stage's other hosts (`peers`, by name): the condition must hold, and
/// the host must not be worse (higher) than its peers' mean beyond
/// `max_ratio` / `max_delta`. Peers without data count as `no_data` says
/// (`pass`: they are left out of the mean).
pub fn judge(
    condition: Option<&Condition>,
    compare: Option<&Compare>,
    no_data: NoData,
    own: &Observation,
    peers: &[(String, Observation)],
) -> Reading {
    let value = match own {
        Observation::Error(why) => return Reading::without_value(Verdict::Error, why.clone()),
        Observation::NoData(why) => return Reading::without_value(Verdict::NoData, why.clone()),
        Observation::Value(v) if v.is_nan() => {
            return Reading::without_value(Verdict::NoData, "the value is NaN")
        }
        Observation::Value(v) => *v,
    };
    let fail = |detail: String| Reading {
        verdict: Verdict::Fail,
        value: Some(value),
        detail,
    };
    let mut said = vec![shown(value)];
    if let Some(c) = condition {
        if !c.holds(value) {
            return fail(format!("{}, not {c}", shown(value)));
        }
        said.push(format!("{c}"));
    }
    if let Some(compare) = compare {
        let mut values = Vec::new();
        for (peer, seen) in peers {
            match seen {
                Observation::Error(why) => {
                    return Reading {
                        verdict: Verdict::Error,
                        value: Some(value),
                        detail: format!("cannot compare with `{peer}`: {why}"),
                    }
                }
                Observation::Value(v) if !v.is_nan() => values.push(*v),
                Observation::Value(_) | Observation::NoData(_) if no_data == NoData::Pass => {}
                Observation::Value(_) | Observation::NoData(_) => {
                    return Reading {
                        verdict: Verdict::NoData,
                        value: Some(value),
                        detail: format!("no data for `{peer}`, to compare with"),
                    }
                }
            }
        }
        if values.is_empty() {
            // no peer at all, or (with `pass`) none with data
            if no_data != NoData::Pass {
                return Reading {
                    verdict: Verdict::NoData,
                    value: Some(value),
                    detail: "no other host of the stage to compare with".into(),
                };
            }
            said.push("no peer with data to compare with".into());
        } else {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            if let Some(ratio) = compare.max_ratio {
                if value > mean * ratio {
                    return fail(format!(
                        "{} against the others' mean {}: more than {ratio} times it",
                        shown(value),
                        shown(mean)
                    ));
                }
            }
            if let Some(delta) = compare.max_delta {
                if value - mean > delta {
                    return fail(format!(
                        "{} against the others' mean {}: more than {delta} above it",
                        shown(value),
                        shown(mean)
                    ));
                }
            }
            said.push(format!("the others' mean {}", shown(mean)));
        }
    }
    Reading {
        verdict: Verdict::Pass,
        value: Some(value),
        detail: said.join("; "),
    }
}

/// A value as shown: as Rust prints it, at most 6 significant decimals.
pub fn shown(value: f64) -> String {
    let text = format!("{value}");
    if text.len() <= 12 {
        text
    } else {
        format!("{value:.6}")
    }
}

/// What the operator chose for a paused gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Count the inconclusive evaluation as passed and go on.
    Continue,
    /// Fail the gate: the rollback policy applies.
    RollBack,
    /// Look again after `interval`, without counting this one.
    KeepWaiting,
}

/// What the engine says after an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Look again at this time.
    Next(Duration),
    /// The gate passed: it stayed good for its whole span.
    Passed,
    /// The gate failed; why.
    Failed(String),
    /// The evaluation was inconclusive and `no_data = pause`: ask the
    /// operator ([`Engine::resume`]); why.
    Inconclusive(String),
}

/// One gate on one host, from its first evaluation to its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    interval: Duration,
    span: Span,
    failure_limit: u32,
    no_data: NoData,
    start: Option<Duration>,
    next: Duration,
    evaluations: u32,
    failures: u32,
    paused: bool,
    over: Option<Step>,
}

impl Engine {
    /// A gate evaluated every `interval` for `span`, failing after more
    /// than `failure_limit` failed evaluations.
    pub fn new(interval: Duration, span: Span, failure_limit: u32, no_data: NoData) -> Engine {
        Engine {
            interval,
            span,
            failure_limit,
            no_data,
            start: None,
            next: Duration::ZERO,
            evaluations: 0,
            failures: 0,
            paused: false,
            over: None,
        }
    }

    /// When the next evaluation is due (`Duration::ZERO`, at once, before
    /// the first).
    pub fn due(&self) -> Duration {
        self.next
    }

    /// The verdict, once there is one.
    pub fn over(&self) -> Option<&Step> {
        self.over.as_ref()
    }

    /// Whether it waits for the operator.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Evaluations counted, and failed ones among them.
    pub fn counts(&self) -> (u32, u32) {
        (self.evaluations, self.failures)
    }

    /// Take the evaluation made at `now`.
    pub fn feed(&mut self, now: Duration, reading: &Reading) -> Step {
        if let Some(over) = &self.over {
            return over.clone();
        }
        debug_assert!(!self.paused, "a paused gate is resumed, not fed");
        self.start.get_or_insert(now);
        let good = match (reading.verdict, self.no_data) {
            (Verdict::Pass, _) | (Verdict::NoData, NoData::Pass) => true,
            (Verdict::NoData | Verdict::Error, NoData::Pause) => {
                self.paused = true;
                return Step::Inconclusive(reading.detail.clone());
            }
            (Verdict::Fail | Verdict::Error, _) | (Verdict::NoData, NoData::Fail) => false,
        };
        self.count(now, good, &reading.detail)
    }

    /// Go on after a pause, as the operator chose at `now`.
    pub fn resume(&mut self, now: Duration, choice: Choice) -> Step {
        if let Some(over) = &self.over {
            return over.clone();
        }
        self.paused = false;
        match choice {
            Choice::Continue => self.count(now, true, ""),
            Choice::RollBack => self.end(Step::Failed(
                "inconclusive, and the operator chose to roll back".into(),
            )),
            Choice::KeepWaiting => {
                self.next = now + self.interval;
                Step::Next(self.next)
            }
        }
    }

    /// Fail at once (the operator interrupted, or no one could be asked).
    pub fn fail(&mut self, why: impl Into<String>) -> Step {
        self.paused = false;
        self.end(Step::Failed(why.into()))
    }

    fn end(&mut self, step: Step) -> Step {
        self.over = Some(step.clone());
        step
    }

    fn count(&mut self, now: Duration, good: bool, detail: &str) -> Step {
        self.evaluations += 1;
        if !good {
            self.failures += 1;
            if self.failures > self.failure_limit {
                let limit = match self.failure_limit {
                    0 => String::new(),
                    n => format!(
                        " ({} failed evaluations, `failure_limit` {n})",
                        self.failures
                    ),
                };
                return self.end(Step::Failed(format!("{detail}{limit}")));
            }
        }
        let start = self.start.unwrap_or(now);
        match self.span {
            Span::Count(n) if self.evaluations >= n => self.end(Step::Passed),
            Span::Bake(d) if now >= start + d => self.end(Step::Passed),
            Span::Count(_) => {
                self.next = now + self.interval;
                Step::Next(self.next)
            }
            Span::Bake(d) => {
                self.next = (now + self.interval).min(start + d);
                Step::Next(self.next)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn pass() -> Reading {
        Reading {
            verdict: Verdict::Pass,
            value: Some(0.001),
            detail: "0.001".into(),
        }
    }

    fn failing() -> Reading {
        Reading {
            verdict: Verdict::Fail,
            value: Some(0.5),
            detail: "0.5, not < 0.01".into(),
        }
    }

    fn nodata() -> Reading {
        Reading::without_value(Verdict::NoData, "no series")
    }

    fn error() -> Reading {
        Reading::without_value(Verdict::Error, "connection refused")
    }

    #[test]
    fn a_bake_looks_every_interval_and_last_at_its_end() {
        let mut e = Engine::new(S(2), Span::Bake(S(5)), 0, NoData::Fail);
        assert_eq!(e.due(), S(0));
        assert_eq!(e.feed(S(10), &pass()), Step::Next(S(12)));
        assert_eq!(e.feed(S(12), &pass()), Step::Next(S(14)));
        assert_eq!(
            e.feed(S(14), &pass()),
            Step::Next(S(15)),
            "capped at the end"
        );
        assert_eq!(e.feed(S(15), &pass()), Step::Passed);
        assert_eq!(e.counts(), (4, 0));
        assert_eq!(e.over(), Some(&Step::Passed));
        assert_eq!(e.feed(S(16), &failing()), Step::Passed, "over is over");
    }

    #[test]
    fn a_late_evaluation_past_the_end_passes() {
        let mut e = Engine::new(S(10), Span::Bake(S(5)), 0, NoData::Fail);
        assert_eq!(e.feed(S(0), &pass()), Step::Next(S(5)));
        assert_eq!(e.feed(S(9), &pass()), Step::Passed);
    }

    #[test]
    fn a_zero_bake_is_one_evaluation() {
        let mut e = Engine::new(S(30), Span::Bake(S(0)), 0, NoData::Fail);
        assert_eq!(e.feed(S(3), &pass()), Step::Passed);
        let mut e = Engine::new(S(30), Span::Bake(S(0)), 0, NoData::Fail);
        assert!(matches!(e.feed(S(3), &failing()), Step::Failed(_)));
    }

    #[test]
    fn a_count_is_that_many_evaluations() {
        let mut e = Engine::new(S(1), Span::Count(3), 0, NoData::Fail);
        assert_eq!(e.feed(S(0), &pass()), Step::Next(S(1)));
        assert_eq!(e.feed(S(1), &pass()), Step::Next(S(2)));
        assert_eq!(e.feed(S(2), &pass()), Step::Passed);
        let mut e = Engine::new(S(1), Span::Count(1), 0, NoData::Fail);
        assert_eq!(e.feed(S(0), &pass()), Step::Passed);
    }

    #[test]
    fn the_first_failure_fails_without_a_limit() {
        let mut e = Engine::new(S(1), Span::Bake(S(60)), 0, NoData::Fail);
        assert_eq!(e.feed(S(0), &pass()), Step::Next(S(1)));
        assert_eq!(
            e.feed(S(1), &failing()),
            Step::Failed("0.5, not < 0.01".into())
        );
        assert_eq!(e.counts(), (2, 1));
    }

    #[test]
    fn failure_limit_tolerates_that_many_failures() {
        let mut e = Engine::new(S(1), Span::Count(5), 2, NoData::Fail);
        assert_eq!(e.feed(S(0), &failing()), Step::Next(S(1)));
        assert_eq!(e.feed(S(1), &pass()), Step::Next(S(2)));
        assert_eq!(e.feed(S(2), &failing()), Step::Next(S(3)));
        assert_eq!(
            e.feed(S(3), &failing()),
            Step::Failed("0.5, not < 0.01 (3 failed evaluations, `failure_limit` 2)".into())
        );
        // within the limit to the end: passed
        let mut e = Engine::new(S(1), Span::Count(3), 1, NoData::Fail);
        e.feed(S(0), &pass());
        e.feed(S(1), &failing());
        assert_eq!(e.feed(S(2), &pass()), Step::Passed);
    }

    #[test]
    fn no_data_fails_by_default_and_errors_never_pass() {
        let mut e = Engine::new(S(1), Span::Count(3), 0, NoData::Fail);
        assert_eq!(e.feed(S(0), &nodata()), Step::Failed("no series".into()));
        for no_data in [NoData::Fail, NoData::Pass] {
            let mut e = Engine::new(S(1), Span::Count(3), 0, no_data);
            assert_eq!(
                e.feed(S(0), &error()),
                Step::Failed("connection refused".into()),
                "{no_data:?}"
            );
        }
        let mut e = Engine::new(S(1), Span::Count(2), 0, NoData::Pass);
        assert_eq!(e.feed(S(0), &nodata()), Step::Next(S(1)));
        assert_eq!(e.feed(S(1), &nodata()), Step::Passed);
        // no data within the failure limit
        let mut e = Engine::new(S(1), Span::Count(2), 1, NoData::Fail);
        assert_eq!(e.feed(S(0), &nodata()), Step::Next(S(1)));
        assert_eq!(e.feed(S(1), &pass()), Step::Passed);
    }

    #[test]
    fn pause_asks_and_each_choice_does_what_it_says() {
        for reading in [nodata(), error()] {
            let mut e = Engine::new(S(2), Span::Bake(S(4)), 0, NoData::Pause);
            assert_eq!(
                e.feed(S(0), &reading),
                Step::Inconclusive(reading.detail.clone())
            );
            assert!(e.paused());
            assert_eq!(e.counts(), (0, 0), "not counted while paused");
            // keep waiting: look again an interval later, not counted
            assert_eq!(e.resume(S(1), Choice::KeepWaiting), Step::Next(S(3)));
            assert!(!e.paused());
            assert_eq!(e.counts(), (0, 0));
            assert!(matches!(e.feed(S(3), &reading), Step::Inconclusive(_)));
            // continue: counted as passed
            assert_eq!(e.resume(S(3), Choice::Continue), Step::Next(S(4)));
            assert_eq!(e.counts(), (1, 0));
            assert_eq!(e.feed(S(4), &pass()), Step::Passed);
        }
        let mut e = Engine::new(S(2), Span::Bake(S(4)), 5, NoData::Pause);
        e.feed(S(0), &nodata());
        assert_eq!(
            e.resume(S(0), Choice::RollBack),
            Step::Failed("inconclusive, and the operator chose to roll back".into())
        );
        assert!(matches!(e.feed(S(1), &pass()), Step::Failed(_)));
    }

    #[test]
    fn keep_waiting_past_the_end_needs_a_good_look() {
        let mut e = Engine::new(S(2), Span::Bake(S(2)), 0, NoData::Pause);
        assert_eq!(e.feed(S(0), &pass()), Step::Next(S(2)));
        assert!(matches!(e.feed(S(2), &nodata()), Step::Inconclusive(_)));
        assert_eq!(e.resume(S(5), Choice::KeepWaiting), Step::Next(S(7)));
        assert_eq!(e.feed(S(7), &pass()), Step::Passed);
        // a real failure with pause still fails
        let mut e = Engine::new(S(2), Span::Bake(S(2)), 0, NoData::Pause);
        assert!(matches!(e.feed(S(0), &failing()), Step::Failed(_)));
    }

    #[test]
    fn fail_ends_a_gate_at_once() {
        let mut e = Engine::new(S(2), Span::Bake(S(10)), 3, NoData::Pause);
        e.feed(S(0), &nodata());
        assert_eq!(e.fail("no terminal"), Step::Failed("no terminal".into()));
        assert!(!e.paused());
        assert_eq!(e.over(), Some(&Step::Failed("no terminal".into())));
    }

    fn lt(t: f64) -> Condition {
        Condition::parse(&format!("< {t}")).unwrap()
    }

    #[test]
    fn judge_a_value_against_the_condition() {
        let c = lt(0.01);
        let r = judge(
            Some(&c),
            None,
            NoData::Fail,
            &Observation::Value(0.002),
            &[],
        );
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.value, Some(0.002));
        let r = judge(Some(&c), None, NoData::Fail, &Observation::Value(0.2), &[]);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.detail, "0.2, not < 0.01");
        let r = judge(
            Some(&c),
            None,
            NoData::Pass,
            &Observation::Value(f64::NAN),
            &[],
        );
        assert_eq!(r.verdict, Verdict::NoData, "NaN is no data");
        let r = judge(
            Some(&c),
            None,
            NoData::Fail,
            &Observation::NoData("empty".into()),
            &[],
        );
        assert_eq!((r.verdict, r.value), (Verdict::NoData, None));
        let r = judge(
            Some(&c),
            None,
            NoData::Fail,
            &Observation::Error("2 series".into()),
            &[],
        );
        assert_eq!(r.verdict, Verdict::Error);
    }

    fn peers(values: &[Observation]) -> Vec<(String, Observation)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("peer-{i}"), v.clone()))
            .collect()
    }

    #[test]
    fn judge_against_the_others() {
        use Observation::Value;
        let ratio = Compare {
            max_ratio: Some(2.0),
            max_delta: None,
        };
        // a bad hour for the whole stage: not the canary's fault
        let bad_hour = peers(&[Value(0.2), Value(0.3)]);
        let r = judge(None, Some(&ratio), NoData::Fail, &Value(0.25), &bad_hour);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert!(r.detail.contains("mean 0.25"), "{}", r.detail);
        // worse than its peers, though under the absolute threshold
        let calm = peers(&[Value(0.001), Value(0.001)]);
        let r = judge(
            Some(&lt(0.01)),
            Some(&ratio),
            NoData::Fail,
            &Value(0.005),
            &calm,
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("more than 2 times"), "{}", r.detail);
        // both must hold: the absolute condition too
        let r = judge(
            Some(&lt(0.01)),
            Some(&ratio),
            NoData::Fail,
            &Value(0.25),
            &bad_hour,
        );
        assert_eq!(r.verdict, Verdict::Fail);
        let delta = Compare {
            max_ratio: None,
            max_delta: Some(0.01),
        };
        let r = judge(None, Some(&delta), NoData::Fail, &Value(0.01), &calm);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        let r = judge(None, Some(&delta), NoData::Fail, &Value(0.02), &calm);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("more than 0.01 above"), "{}", r.detail);
        // a zero mean: only zero is not worse
        let zero = peers(&[Value(0.0)]);
        assert_eq!(
            judge(None, Some(&ratio), NoData::Fail, &Value(0.0), &zero).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(None, Some(&ratio), NoData::Fail, &Value(0.001), &zero).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn peers_without_data_follow_no_data() {
        use Observation::{NoData as Nothing, Value};
        let ratio = Compare {
            max_ratio: Some(2.0),
            max_delta: None,
        };
        let some = peers(&[Value(0.001), Nothing("empty".into()), Value(f64::NAN)]);
        for no_data in [NoData::Fail, NoData::Pause] {
            let r = judge(None, Some(&ratio), no_data, &Value(0.001), &some);
            assert_eq!(r.verdict, Verdict::NoData, "{no_data:?}");
            assert!(r.detail.contains("`peer-1`"), "{}", r.detail);
        }
        // pass: left out of the mean
        let r = judge(None, Some(&ratio), NoData::Pass, &Value(0.003), &some);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        let r = judge(None, Some(&ratio), NoData::Pass, &Value(0.0015), &some);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        // nobody to compare with
        let r = judge(None, Some(&ratio), NoData::Fail, &Value(0.001), &[]);
        assert_eq!(r.verdict, Verdict::NoData);
        let none = peers(&[Nothing("empty".into())]);
        let r = judge(None, Some(&ratio), NoData::Pass, &Value(0.001), &none);
        assert_eq!(r.verdict, Verdict::Pass);
        // a peer that cannot be read: an error, never a pass
        let broken = peers(&[Observation::Error("refused".into())]);
        let r = judge(None, Some(&ratio), NoData::Pass, &Value(0.001), &broken);
        assert_eq!(r.verdict, Verdict::Error);
    }
}
