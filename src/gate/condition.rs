//! A gate's `condition`: a comparison and a number, `< 0.01`, `>= 0.99`,
//! which a good value satisfies.

use std::fmt;

/// The comparison of a [`Condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Less => "<",
            Op::LessOrEqual => "<=",
            Op::Greater => ">",
            Op::GreaterOrEqual => ">=",
            Op::Equal => "==",
            Op::NotEqual => "!=",
        }
    }
}

/// What a good value satisfies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// The comparison.
    pub op: Op,
    /// The number compared with.
    pub threshold: f64,
}

/// What `condition` accepts, for the `note:` of an error.
pub const ACCEPTED: &str = "accepted: `<`, `<=`, `>`, `>=`, `==` or `!=` and a number, e.g. \
                            `< 0.01` or `>= 0.99`";

impl Condition {
    /// Parse `< 0.01`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        // two-character operators first
        let ops = [
            ("<=", Op::LessOrEqual),
            (">=", Op::GreaterOrEqual),
            ("==", Op::Equal),
            ("!=", Op::NotEqual),
            ("<", Op::Less),
            (">", Op::Greater),
        ];
        let Some((op, rest)) = ops
            .iter()
            .find_map(|(s, op)| text.strip_prefix(s).map(|rest| (*op, rest)))
        else {
            return Err("it does not start with a comparison".into());
        };
        let number = rest.trim();
        match number.parse::<f64>() {
            Ok(n) if n.is_finite() && !number.is_empty() => Ok(Condition { op, threshold: n }),
            _ => Err(format!("`{number}` is not a number")),
        }
    }

    /// Whether `value` satisfies the condition (NaN never does).
    pub fn holds(&self, value: f64) -> bool {
        let t = self.threshold;
        match self.op {
            Op::Less => value < t,
            Op::LessOrEqual => value <= t,
            Op::Greater => value > t,
            Op::GreaterOrEqual => value >= t,
            Op::Equal => value == t,
            Op::NotEqual => !value.is_nan() && value != t,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_comparison() {
        let c = |t: &str| Condition::parse(t).unwrap();
        assert!(c("< 0.01").holds(0.002));
        assert!(!c("< 0.01").holds(0.01));
        assert!(c("<= 0.01").holds(0.01));
        assert!(c(">0.99").holds(1.0));
        assert!(!c("> 0.99").holds(0.99));
        assert!(c(">= 0.99").holds(0.99));
        assert!(c("== 1").holds(1.0));
        assert!(c("!= 1").holds(2.0));
        assert!(!c("!= 1").holds(1.0));
        assert!(c("< -1e3").holds(-2000.0));
        for cond in ["< 1", "<= 1", "> 1", ">= 1", "== 1", "!= 1"] {
            assert!(!c(cond).holds(f64::NAN), "{cond}: NaN never holds");
        }
        assert_eq!(c(" >=  0.5 ").to_string(), ">= 0.5");
    }

    #[test]
    fn bad_conditions_are_refused() {
        for bad in [
            "0.01", "=< 1", "< ", "< abc", "< NaN", "< inf", "= 1", "<< 1", "",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }
}
