//! Lenient scalars: numbers and flags that may come as strings ("0.5"), as the
//! prototype wrote them, checked against a range.

use std::fmt;
use yaml_serde::Value;

/// A closed or open interval of floats, displayed as `(0, 1]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interval {
    pub lo: f64,
    pub lo_open: bool,
    pub hi: f64,
    pub hi_open: bool,
}

impl Interval {
    /// Whether `x` lies in the interval.
    pub fn contains(&self, x: f64) -> bool {
        let above = if self.lo_open {
            x > self.lo
        } else {
            x >= self.lo
        };
        let below = if self.hi_open {
            x < self.hi
        } else {
            x <= self.hi
        };
        above && below
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = if self.lo_open { '(' } else { '[' };
        let close = if self.hi_open { ')' } else { ']' };
        write!(f, "{open}{}, {}{close}", self.lo, self.hi)
    }
}

/// An inclusive range of whole numbers, displayed as `1..=10000`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Count {
    pub min: u32,
    pub max: u32,
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

/// Why a value was refused: the rule and the value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub rule: String,
    pub got: String,
}

fn refuse(rule: String, v: &Value) -> Refusal {
    Refusal {
        rule,
        got: describe(v),
    }
}

/// The value as a user wrote it, for error messages: numbers and numeric
/// strings plain, other strings quoted, collections by their kind.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if numeric_text(s).is_some() => s.trim().to_owned(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

fn numeric_text(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        Value::String(s) => numeric_text(s),
        _ => None,
    }
}

/// A float in `range`, from a number or a numeric string.
pub(crate) fn float_in(v: &Value, range: Interval) -> Result<f64, Refusal> {
    let Some(x) = as_f64(v) else {
        return Err(refuse(format!("must be a number in {range}"), v));
    };
    if range.contains(x) {
        Ok(x)
    } else {
        Err(refuse(format!("must be in {range}"), v))
    }
}

/// A whole number in `range`, from a number or a numeric string (`"3"`, `3.0`).
pub(crate) fn count_in(v: &Value, range: Count) -> Result<u32, Refusal> {
    let rule = || format!("must be a whole number in {range}");
    let Some(x) = as_f64(v) else {
        return Err(refuse(rule(), v));
    };
    if x.fract() != 0.0 || x < f64::from(range.min) || x > f64::from(range.max) {
        return Err(refuse(rule(), v));
    }
    // In range of u32 and whole, so the conversion is exact.
    Ok(x as u32)
}

/// A flag, from `true`/`false`, or those words or `yes`/`no` as strings (the
/// prototype's form fields said `yes`).
pub(crate) fn flag(v: &Value) -> Result<bool, Refusal> {
    let read = match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => flag_word(s),
        _ => None,
    };
    read.ok_or_else(|| refuse("must be true or false (or yes or no)".to_owned(), v))
}

/// A flag written as a word, as intents take it: `true`/`yes` or
/// `false`/`no`, in any case; `None` for any other word.
pub fn flag_word(word: &str) -> Option<bool> {
    match word.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// Non-empty text, from a string or a number (ids such as `7` are text too).
pub(crate) fn text(v: &Value) -> Result<String, Refusal> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(refuse("must be text".to_owned(), v)),
    };
    if s.is_empty() {
        Err(refuse("must not be empty".to_owned(), v))
    } else {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: Interval = Interval {
        lo: 0.0,
        lo_open: true,
        hi: 1.0,
        hi_open: false,
    };

    #[test]
    fn numbers_may_be_strings() {
        assert_eq!(float_in(&Value::String("0.5".into()), UNIT), Ok(0.5));
        assert_eq!(float_in(&Value::from(1), UNIT), Ok(1.0));
        let count = Count { min: 1, max: 10 };
        assert_eq!(count_in(&Value::String(" 3 ".into()), count), Ok(3));
        assert_eq!(count_in(&Value::from(3.0), count), Ok(3));
        assert_eq!(flag(&Value::String("True".into())), Ok(true));
    }

    #[test]
    fn refusals_show_the_value_as_written() {
        let err = float_in(&Value::String("1.5".into()), UNIT).unwrap_err();
        assert_eq!(
            (err.rule.as_str(), err.got.as_str()),
            ("must be in (0, 1]", "1.5")
        );
        let err = float_in(&Value::String("NaN".into()), UNIT).unwrap_err();
        assert_eq!(err.got, "\"NaN\"");
        let err = count_in(&Value::from(2.5), Count { min: 1, max: 10 }).unwrap_err();
        assert_eq!(err.rule, "must be a whole number in 1..=10");
    }
}
