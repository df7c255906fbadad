//! Filter patterns: plain terms (all must appear), "quoted phrases", ?alternatives (any must
//! appear), -exclusions, and JSON patterns `{ $.key = value }` with && / || and parentheses.
//! Space-delimited patterns (`[a, b]`) are refused as unsupported rather than guessed.

use super::groups::invalid;
use crate::protocol::AwsError;
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Pattern {
    All,
    Terms {
        required: Vec<String>,
        optional: Vec<String>,
        excluded: Vec<String>,
    },
    Json(JsonExpr),
}

#[derive(Debug, Clone)]
pub enum JsonExpr {
    And(Box<JsonExpr>, Box<JsonExpr>),
    Or(Box<JsonExpr>, Box<JsonExpr>),
    Cmp(Vec<String>, String, Literal),
}

#[derive(Debug, Clone)]
pub enum Literal {
    Str(String),
    Num(f64),
    Null,
    Bool(bool),
    Exists,
}

fn bad(pattern: &str, why: &str) -> AwsError {
    invalid(format!("Invalid filter pattern '{pattern}': {why}"))
}

pub fn parse(pattern: &str) -> Result<Pattern, AwsError> {
    let p = pattern.trim();
    if p.is_empty() || p == "\"\"" {
        return Ok(Pattern::All);
    }
    if p.starts_with('{') {
        let inner = p
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or_else(|| bad(pattern, "a JSON pattern must end with '}'"))?;
        let toks = json_tokens(pattern, inner)?;
        let mut parser = JsonParser {
            toks,
            pos: 0,
            pattern,
        };
        let e = parser.or()?;
        if parser.pos != parser.toks.len() {
            return Err(bad(pattern, "unexpected input"));
        }
        return Ok(Pattern::Json(e));
    }
    if p.starts_with('[') {
        return Err(bad(
            pattern,
            "space-delimited filter patterns are not supported by ecs-emulator",
        ));
    }
    let (mut required, mut optional, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut kind = ' ';
        if chars[i] == '?' || chars[i] == '-' {
            kind = chars[i];
            i += 1;
        }
        let term: String = if chars.get(i) == Some(&'"') {
            let st = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(bad(pattern, "unterminated quoted term"));
            }
            let t = chars[st..i].iter().collect();
            i += 1;
            t
        } else {
            let st = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            chars[st..i].iter().collect()
        };
        if term.is_empty() {
            continue;
        }
        match kind {
            '?' => optional.push(term),
            '-' => excluded.push(term),
            _ => required.push(term),
        }
    }
    Ok(Pattern::Terms {
        required,
        optional,
        excluded,
    })
}

impl Pattern {
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms {
                required,
                optional,
                excluded,
            } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && (optional.is_empty()
                        || optional.iter().any(|t| message.contains(t.as_str())))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
            }
            Pattern::Json(e) => match serde_json::from_str::<Value>(message) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => e.eval(&v),
                _ => false,
            },
        }
    }
}

impl JsonExpr {
    fn eval(&self, doc: &Value) -> bool {
        match self {
            JsonExpr::And(a, b) => a.eval(doc) && b.eval(doc),
            JsonExpr::Or(a, b) => a.eval(doc) || b.eval(doc),
            JsonExpr::Cmp(path, op, lit) => {
                let mut cur = Some(doc);
                for seg in path {
                    cur = cur.and_then(|c| match seg.parse::<usize>() {
                        Ok(i) if c.is_array() => c.get(i),
                        _ => c.get(seg.as_str()),
                    });
                }
                compare(cur, op, lit)
            }
        }
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn compare(v: Option<&Value>, op: &str, lit: &Literal) -> bool {
    match lit {
        Literal::Exists => match op {
            "NOT EXISTS" => v.is_none(),
            _ => v.is_some(),
        },
        Literal::Null => {
            let is_null = matches!(v, Some(Value::Null));
            if op == "!=" {
                !is_null
            } else {
                is_null
            }
        }
        Literal::Bool(b) => {
            let eq = v.and_then(Value::as_bool) == Some(*b);
            if op == "!=" {
                !eq
            } else {
                eq
            }
        }
        Literal::Num(n) => {
            let Some(x) = v.and_then(|v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }) else {
                return false;
            };
            match op {
                "=" => x == *n,
                "!=" => x != *n,
                "<" => x < *n,
                "<=" => x <= *n,
                ">" => x > *n,
                _ => x >= *n,
            }
        }
        Literal::Str(s) => {
            let text = match v {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => return op == "!=" && v.is_some(),
            };
            let eq = wildcard(s, &text);
            if op == "!=" {
                !eq
            } else {
                eq
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum JTok {
    Path(Vec<String>),
    Op(String),
    Str(String),
    Word(String),
    Open,
    Close,
    And,
    Or,
}

fn json_tokens(pattern: &str, s: &str) -> Result<Vec<JTok>, AwsError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(JTok::Open);
            i += 1;
        } else if c == ')' {
            out.push(JTok::Close);
            i += 1;
        } else if c == '&' && chars.get(i + 1) == Some(&'&') {
            out.push(JTok::And);
            i += 2;
        } else if c == '|' && chars.get(i + 1) == Some(&'|') {
            out.push(JTok::Or);
            i += 2;
        } else if c == '$' {
            let st = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"=!<>()".contains(chars[i]) {
                i += 1;
            }
            let text: String = chars[st..i].iter().collect();
            let rest = text
                .strip_prefix('$')
                .ok_or_else(|| bad(pattern, "a selector must start with $"))?;
            let mut path = Vec::new();
            for seg in rest.replace('[', ".").replace(']', "").split('.') {
                if !seg.is_empty() {
                    path.push(seg.to_string());
                }
            }
            out.push(JTok::Path(path));
        } else if "=!<>".contains(c) {
            let st = i;
            while i < chars.len() && "=!<>".contains(chars[i]) {
                i += 1;
            }
            let op: String = chars[st..i].iter().collect();
            if !["=", "!=", "<", "<=", ">", ">="].contains(&op.as_str()) {
                return Err(bad(pattern, &format!("unknown operator {op}")));
            }
            out.push(JTok::Op(op));
        } else if c == '"' {
            let st = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(bad(pattern, "unterminated string"));
            }
            out.push(JTok::Str(chars[st..i].iter().collect()));
            i += 1;
        } else {
            let st = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"()".contains(chars[i]) {
                i += 1;
            }
            out.push(JTok::Word(chars[st..i].iter().collect()));
        }
    }
    Ok(out)
}

struct JsonParser<'a> {
    toks: Vec<JTok>,
    pos: usize,
    pattern: &'a str,
}

impl JsonParser<'_> {
    fn next(&mut self) -> Option<JTok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<JsonExpr, AwsError> {
        let mut left = self.and()?;
        while self.toks.get(self.pos) == Some(&JTok::Or) {
            self.pos += 1;
            left = JsonExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<JsonExpr, AwsError> {
        let mut left = self.atom()?;
        while self.toks.get(self.pos) == Some(&JTok::And) {
            self.pos += 1;
            left = JsonExpr::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<JsonExpr, AwsError> {
        match self.next() {
            Some(JTok::Open) => {
                let e = self.or()?;
                if self.next() != Some(JTok::Close) {
                    return Err(bad(self.pattern, "expected ')'"));
                }
                Ok(e)
            }
            Some(JTok::Path(path)) => match self.next() {
                Some(JTok::Op(op)) => {
                    let lit = match self.next() {
                        Some(JTok::Str(s)) => Literal::Str(s),
                        Some(JTok::Word(w)) => match w.as_str() {
                            "NULL" => Literal::Null,
                            "TRUE" | "true" => Literal::Bool(true),
                            "FALSE" | "false" => Literal::Bool(false),
                            _ => match w.parse::<f64>() {
                                Ok(n) => Literal::Num(n),
                                Err(_) => Literal::Str(w),
                            },
                        },
                        _ => return Err(bad(self.pattern, "expected a value")),
                    };
                    if matches!(lit, Literal::Str(_)) && !["=", "!="].contains(&op.as_str()) {
                        return Err(bad(self.pattern, "strings compare only with = and !="));
                    }
                    Ok(JsonExpr::Cmp(path, op, lit))
                }
                Some(JTok::Word(w)) if w == "IS" => match self.next() {
                    Some(JTok::Word(x)) if x == "NULL" => {
                        Ok(JsonExpr::Cmp(path, "=".into(), Literal::Null))
                    }
                    Some(JTok::Word(x)) if x == "TRUE" => {
                        Ok(JsonExpr::Cmp(path, "=".into(), Literal::Bool(true)))
                    }
                    Some(JTok::Word(x)) if x == "FALSE" => {
                        Ok(JsonExpr::Cmp(path, "=".into(), Literal::Bool(false)))
                    }
                    _ => Err(bad(self.pattern, "expected NULL, TRUE or FALSE after IS")),
                },
                Some(JTok::Word(w)) if w == "NOT" => match self.next() {
                    Some(JTok::Word(x)) if x == "EXISTS" => {
                        Ok(JsonExpr::Cmp(path, "NOT EXISTS".into(), Literal::Exists))
                    }
                    _ => Err(bad(self.pattern, "expected EXISTS after NOT")),
                },
                Some(JTok::Word(w)) if w == "EXISTS" => {
                    Ok(JsonExpr::Cmp(path, "EXISTS".into(), Literal::Exists))
                }
                _ => Err(bad(self.pattern, "expected an operator")),
            },
            _ => Err(bad(self.pattern, "expected a selector ($.key)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, msg: &str) -> bool {
        parse(p).expect("pattern").matches(msg)
    }

    #[test]
    fn term_patterns() {
        assert!(m("", "anything"));
        assert!(m("ERROR", "an ERROR here"));
        assert!(!m("ERROR", "an error here"));
        assert!(m("ERROR db", "ERROR in db"));
        assert!(!m("ERROR db", "ERROR in cache"));
        assert!(m("\"in db\"", "ERROR in db"));
        assert!(!m("\"in db\"", "ERROR db in"));
        assert!(m("?ERROR ?WARN", "WARN x"));
        assert!(!m("?ERROR ?WARN", "INFO x"));
        assert!(m("ERROR -timeout", "ERROR boom"));
        assert!(!m("ERROR -timeout", "ERROR timeout"));
    }

    #[test]
    fn json_patterns() {
        let msg = r#"{"level":"error","latency":250,"user":{"id":"u-1"},"tags":["a","b"],"ok":false,"gone":null}"#;
        assert!(m(r#"{ $.level = "error" }"#, msg));
        assert!(m(r#"{ $.level = "err*" }"#, msg));
        assert!(!m(r#"{ $.level = "info" }"#, msg));
        assert!(m("{ $.latency > 200 }", msg));
        assert!(!m("{ $.latency < 200 }", msg));
        assert!(m(r#"{ $.user.id = "u-1" && $.latency >= 250 }"#, msg));
        assert!(m(r#"{ ($.level = "info") || ($.tags[1] = "b") }"#, msg));
        assert!(m("{ $.ok IS FALSE }", msg));
        assert!(m("{ $.gone IS NULL }", msg));
        assert!(m("{ $.missing NOT EXISTS }", msg));
        assert!(!m(r#"{ $.level = "error" }"#, "not json error"));
        assert!(parse("{ $.a = }").is_err());
        assert!(parse("[ip, user]").is_err());
    }
}
