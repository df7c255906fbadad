//! Metric math for GetMetricData: numbers, query ids, + - * /, parentheses, METRICS(["filter"]),
//! [a, b] arrays and SUM / AVG / MIN / MAX. Anything else is refused with InvalidParameterValue
//! naming what is unsupported; nothing is faked.

use super::metrics::{invalid, TimeSeries};
use crate::protocol::AwsError;
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Str(String),
    Op(char),
}

#[derive(Debug, Clone)]
enum Expr {
    Num(f64),
    Id(String),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    Metrics(Option<String>),
    Array(Vec<Expr>),
}

enum Val {
    Scalar(f64),
    Series(TimeSeries),
    Many(Vec<TimeSeries>),
}

pub struct Env {
    pub series: BTreeMap<String, TimeSeries>,
    /// Ids of the MetricStat queries, in request order (what METRICS() returns).
    pub metric_ids: Vec<String>,
    pub expressions: BTreeMap<String, String>,
    pub in_progress: HashSet<String>,
}

fn err(id: &str, what: &str) -> AwsError {
    invalid(format!("Error in expression {id}: {what}"))
}

fn lex(id: &str, s: &str) -> Result<Vec<Tok>, AwsError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let st = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || ((chars[i] == 'e' || chars[i] == 'E') && i > st))
            {
                i += 1;
            }
            let text: String = chars[st..i].iter().collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| err(id, &format!("invalid number {text}")))?;
            out.push(Tok::Num(n));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[st..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let st = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(id, "unterminated string"));
            }
            out.push(Tok::Str(chars[st..i].iter().collect()));
            i += 1;
        } else if "+-*/()[],".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            return Err(err(
                id,
                &format!("the character '{c}' is not supported by ecs-emulator's metric math"),
            ));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    id: &'a str,
    toks: Vec<Tok>,
    pos: usize,
    /// Unary operators, parentheses, arrays and calls open around the cursor.
    depth: usize,
}

/// Deeper nesting is refused: parsing, evaluating and dropping recurse once per level, and a
/// 2,048-character expression nested a thousand levels deep overflowed a tokio worker's stack,
/// aborting the whole emulator. AWS documents no limit; real expressions nest a few levels.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Op(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), AwsError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(err(self.id, &format!("expected '{c}'")))
        }
    }

    fn sum(&mut self) -> Result<Expr, AwsError> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(c @ ('+' | '-'))) => *c,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.product()?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
    }

    fn product(&mut self) -> Result<Expr, AwsError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(c @ ('*' | '/'))) => *c,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
    }

    /// Every recursion of the parser passes here, so the depth is counted here.
    fn unary(&mut self) -> Result<Expr, AwsError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                self.id,
                &format!("the expression nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        let e = if self.eat('-') {
            self.unary().map(|e| Expr::Neg(Box::new(e)))
        } else {
            self.atom()
        };
        self.depth -= 1;
        e
    }

    fn list(&mut self, close: char) -> Result<Vec<Expr>, AwsError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.sum()?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(',')?;
        }
    }

    fn atom(&mut self) -> Result<Expr, AwsError> {
        let tok = self.peek().cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::Op('(')) => {
                let e = self.sum()?;
                self.expect(')')?;
                Ok(e)
            }
            Some(Tok::Op('[')) => Ok(Expr::Array(self.list(']')?)),
            Some(Tok::Ident(name)) => {
                if !self.eat('(') {
                    return Ok(Expr::Id(name));
                }
                if name == "METRICS" {
                    let filter = match self.peek().cloned() {
                        Some(Tok::Str(s)) => {
                            self.pos += 1;
                            Some(s)
                        }
                        _ => None,
                    };
                    self.expect(')')?;
                    return Ok(Expr::Metrics(filter));
                }
                if !matches!(name.as_str(), "SUM" | "AVG" | "MIN" | "MAX") {
                    return Err(err(
                        self.id,
                        &format!(
                            "the function {name} is not supported by ecs-emulator (supported: +, -, *, /, METRICS, SUM, AVG, MIN, MAX)"
                        ),
                    ));
                }
                let args = self.list(')')?;
                if args.len() != 1 {
                    return Err(err(self.id, &format!("{name} takes exactly one argument")));
                }
                Ok(Expr::Call(name, args))
            }
            Some(Tok::Str(_)) => Err(err(self.id, "unexpected string")),
            Some(Tok::Op(c)) => Err(err(self.id, &format!("unexpected '{c}'"))),
            None => Err(err(self.id, "unexpected end of expression")),
        }
    }
}

fn parse(id: &str, text: &str) -> Result<Expr, AwsError> {
    let mut p = Parser {
        id,
        toks: lex(id, text)?,
        pos: 0,
        depth: 0,
    };
    let e = p.sum()?;
    if p.pos != p.toks.len() {
        return Err(err(id, "unexpected input after the expression"));
    }
    Ok(e)
}

fn apply(op: char, a: f64, b: f64) -> f64 {
    match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        _ => a / b,
    }
}

/// Keeps finite results only (x / 0 leaves no datapoint).
fn finite(s: impl Iterator<Item = (i64, f64)>) -> TimeSeries {
    s.filter(|(_, v)| v.is_finite()).collect()
}

fn reduce(name: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match name {
        "SUM" => values.iter().sum(),
        "AVG" => values.iter().sum::<f64>() / values.len() as f64,
        "MIN" => values.iter().copied().fold(f64::INFINITY, f64::min),
        _ => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

impl Env {
    /// The time series of query `id` (a MetricStat result, or an expression evaluated once).
    pub fn resolve(&mut self, id: &str) -> Result<TimeSeries, AwsError> {
        if let Some(s) = self.series.get(id) {
            return Ok(s.clone());
        }
        let Some(text) = self.expressions.get(id).cloned() else {
            return Err(invalid(format!("Unknown metric id {id}.")));
        };
        if !self.in_progress.insert(id.to_string()) {
            return Err(err(id, "circular reference between expressions"));
        }
        let e = parse(id, &text)?;
        let s = match self.eval(id, &e)? {
            Val::Series(s) => s,
            Val::Scalar(_) => {
                return Err(err(
                    id,
                    "the expression returns a single number, not a time series",
                ))
            }
            Val::Many(_) => {
                return Err(err(
                    id,
                    "the expression returns several time series, which ecs-emulator does not support (reduce them with SUM, AVG, MIN or MAX)",
                ))
            }
        };
        self.in_progress.remove(id);
        self.series.insert(id.to_string(), s.clone());
        Ok(s)
    }

    fn eval(&mut self, id: &str, e: &Expr) -> Result<Val, AwsError> {
        Ok(match e {
            Expr::Num(n) => Val::Scalar(*n),
            Expr::Id(name) => {
                if !self.series.contains_key(name) && !self.expressions.contains_key(name) {
                    return Err(err(id, &format!("unknown metric id {name}")));
                }
                Val::Series(self.resolve(name)?)
            }
            Expr::Neg(x) => match self.eval(id, x)? {
                Val::Scalar(v) => Val::Scalar(-v),
                Val::Series(s) => Val::Series(s.into_iter().map(|(t, v)| (t, -v)).collect()),
                Val::Many(m) => Val::Many(
                    m.into_iter()
                        .map(|s| s.into_iter().map(|(t, v)| (t, -v)).collect())
                        .collect(),
                ),
            },
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.eval(id, a)?, self.eval(id, b)?);
                match (a, b) {
                    (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(apply(*op, x, y)),
                    (Val::Series(s), Val::Scalar(y)) => {
                        Val::Series(finite(s.into_iter().map(|(t, v)| (t, apply(*op, v, y)))))
                    }
                    (Val::Scalar(x), Val::Series(s)) => {
                        Val::Series(finite(s.into_iter().map(|(t, v)| (t, apply(*op, x, v)))))
                    }
                    (Val::Series(s), Val::Series(r)) => Val::Series(finite(
                        s.into_iter()
                            .filter_map(|(t, v)| r.get(&t).map(|w| (t, apply(*op, v, *w)))),
                    )),
                    (Val::Many(m), Val::Scalar(y)) => Val::Many(
                        m.into_iter()
                            .map(|s| finite(s.into_iter().map(|(t, v)| (t, apply(*op, v, y)))))
                            .collect(),
                    ),
                    (Val::Scalar(x), Val::Many(m)) => Val::Many(
                        m.into_iter()
                            .map(|s| finite(s.into_iter().map(|(t, v)| (t, apply(*op, x, v)))))
                            .collect(),
                    ),
                    _ => return Err(err(
                        id,
                        "arithmetic between arrays of time series is not supported by ecs-emulator",
                    )),
                }
            }
            Expr::Metrics(filter) => {
                let ids: Vec<String> = self
                    .metric_ids
                    .iter()
                    .filter(|m| filter.as_ref().is_none_or(|f| m.contains(f.as_str())))
                    .cloned()
                    .collect();
                let mut all = Vec::new();
                for m in ids {
                    all.push(self.resolve(&m)?);
                }
                Val::Many(all)
            }
            Expr::Array(items) => {
                let mut all = Vec::new();
                for item in items {
                    match self.eval(id, item)? {
                        Val::Series(s) => all.push(s),
                        Val::Many(m) => all.extend(m),
                        Val::Scalar(_) => {
                            return Err(err(id, "an array may only contain time series"))
                        }
                    }
                }
                Val::Many(all)
            }
            Expr::Call(name, args) => {
                let arg = args
                    .first()
                    .ok_or_else(|| err(id, &format!("{name} takes one argument")))?;
                match self.eval(id, arg)? {
                    Val::Scalar(v) => Val::Scalar(v),
                    Val::Series(s) => {
                        let values: Vec<f64> = s.values().copied().collect();
                        match reduce(name, &values) {
                            Some(v) => Val::Scalar(v),
                            None => Val::Series(TimeSeries::new()),
                        }
                    }
                    Val::Many(m) => {
                        let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                        for s in &m {
                            for (t, v) in s {
                                at.entry(*t).or_default().push(*v);
                            }
                        }
                        Val::Series(
                            at.into_iter()
                                .filter_map(|(t, vs)| Some((t, reduce(name, &vs)?)))
                                .collect(),
                        )
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        let m1: TimeSeries = [(0, 1.0), (60, 2.0), (120, 3.0)].into_iter().collect();
        let m2: TimeSeries = [(0, 10.0), (60, 0.0)].into_iter().collect();
        Env {
            series: [("m1".to_string(), m1), ("m2".to_string(), m2)]
                .into_iter()
                .collect(),
            metric_ids: vec!["m1".into(), "m2".into()],
            expressions: BTreeMap::new(),
            in_progress: HashSet::new(),
        }
    }

    fn run(text: &str) -> Result<Vec<(i64, f64)>, AwsError> {
        let mut e = env();
        e.expressions.insert("e1".into(), text.into());
        e.resolve("e1").map(|s| s.into_iter().collect())
    }

    #[test]
    fn arithmetic_over_query_ids() {
        assert_eq!(run("m1 + m2").expect("ok"), vec![(0, 11.0), (60, 2.0)]);
        assert_eq!(
            run("m1 * 100").expect("ok"),
            vec![(0, 100.0), (60, 200.0), (120, 300.0)]
        );
        assert_eq!(run("m1 / m2").expect("ok"), vec![(0, 0.1)]);
        assert_eq!(
            run("SUM(METRICS())").expect("ok"),
            vec![(0, 11.0), (60, 2.0), (120, 3.0)]
        );
        assert_eq!(
            run("MAX([m1, m2]) - 1").expect("ok"),
            vec![(0, 9.0), (60, 1.0), (120, 2.0)]
        );
        assert_eq!(
            run("m1 / SUM(m1) * 6").expect("ok"),
            vec![(0, 1.0), (60, 2.0), (120, 3.0)]
        );
        assert_eq!(run("-(m1 - 1)").expect("ok")[2], (120, -2.0));
    }

    #[test]
    fn unsupported_and_bad_expressions_are_refused() {
        let e = run("FILL(m1, 0)").expect_err("unsupported");
        assert_eq!(e.code, "InvalidParameterValueException");
        assert!(e.message.contains("FILL"), "{}", e.message);
        assert!(run("m3 + 1").expect_err("unknown").message.contains("m3"));
        assert!(run("1 + 2").is_err());
        assert!(run("METRICS() * 2").is_err());
        assert!(run("m1 +").is_err());
        let mut e = env();
        e.expressions.insert("e1".into(), "e2 + 1".into());
        e.expressions.insert("e2".into(), "e1 + 1".into());
        assert!(e.resolve("e1").is_err());
    }

    /// The longest expression AWS takes (2,048 characters) nested as deep as it can go, parsed,
    /// evaluated and dropped on a thread with a tokio worker's 2 MiB stack: refused or answered,
    /// never a stack overflow (which would abort the whole emulator).
    #[test]
    fn deeply_nested_expressions_do_not_overflow_the_stack() {
        let parens = format!("{}m1{}", "(".repeat(1023), ")".repeat(1023));
        let minus = format!("{}m1", "-".repeat(2046));
        let calls = format!("{}m1{}", "SUM(".repeat(400), ")".repeat(400));
        let arrays = format!("{}m1{}", "[".repeat(1023), "]".repeat(1023));
        let fine = format!("{}m1{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(run(&fine).expect("40 levels are fine").len(), 3);
        for text in [parens, minus, calls, arrays] {
            assert!(text.len() <= 2048);
            let outcome = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || run(&text).map_err(|e| e.message))
                .expect("spawn")
                .join()
                .expect("no panic");
            if let Err(message) = outcome {
                assert!(message.contains("nest"), "{message}");
            }
        }
    }
}
