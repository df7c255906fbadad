//! The composite alarm rule language: `ALARM(name)`, `OK(name)`, `INSUFFICIENT_DATA(name)` (name
//! or ARN, optionally in double quotes), `TRUE`, `FALSE`, `AND`, `OR`, `NOT` and parentheses.
//! NOT binds tighter than AND, AND tighter than OR.

use super::super::actions::AlarmState;

#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Const(bool),
    State(AlarmState, String),
    Not(Box<Rule>),
    And(Box<Rule>, Box<Rule>),
    Or(Box<Rule>, Box<Rule>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated quoted alarm name".into());
            }
            out.push(Tok::Quoted(chars[start..i].iter().collect()));
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '(' && chars[i] != ')'
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Rule, String> {
        let mut left = self.and()?;
        while self.peek_word() == Some("OR") {
            self.pos += 1;
            left = Rule::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Rule, String> {
        let mut left = self.not()?;
        while self.peek_word() == Some("AND") {
            self.pos += 1;
            left = Rule::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Rule, String> {
        if self.peek_word() == Some("NOT") {
            self.pos += 1;
            return Ok(Rule::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Rule, String> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Open) => {
                let inner = self.or()?;
                self.expect_close()?;
                Ok(inner)
            }
            Some(Tok::Word(w)) if w == "TRUE" => Ok(Rule::Const(true)),
            Some(Tok::Word(w)) if w == "FALSE" => Ok(Rule::Const(false)),
            Some(Tok::Word(w)) => {
                let state = AlarmState::parse(&w).ok_or_else(|| format!("unexpected '{w}'"))?;
                if self.toks.get(self.pos) != Some(&Tok::Open) {
                    return Err(format!("expected '(' after {w}"));
                }
                self.pos += 1;
                let name = match self.toks.get(self.pos).cloned() {
                    Some(Tok::Quoted(n)) | Some(Tok::Word(n)) => n,
                    _ => return Err(format!("expected an alarm name in {w}()")),
                };
                self.pos += 1;
                self.expect_close()?;
                Ok(Rule::State(state, name))
            }
            Some(Tok::Close) => Err("unexpected ')'".into()),
            Some(Tok::Quoted(q)) => Err(format!("unexpected \"{q}\"")),
            None => Err("unexpected end of rule".into()),
        }
    }

    fn expect_close(&mut self) -> Result<(), String> {
        if self.toks.get(self.pos) == Some(&Tok::Close) {
            self.pos += 1;
            Ok(())
        } else {
            Err("expected ')'".into())
        }
    }
}

impl Rule {
    pub fn parse(s: &str) -> Result<Rule, String> {
        let mut p = Parser {
            toks: lex(s)?,
            pos: 0,
        };
        let rule = p.or()?;
        if p.pos != p.toks.len() {
            return Err("unexpected text after the rule".into());
        }
        Ok(rule)
    }

    /// The alarm names or ARNs the rule refers to.
    pub fn alarms(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Rule::Const(_) => {}
            Rule::State(_, n) => out.push(n.clone()),
            Rule::Not(r) => r.collect(out),
            Rule::And(a, b) | Rule::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    /// Evaluates with `state_of(name or ARN)`; an unknown alarm matches no state.
    pub fn eval(&self, state_of: &dyn Fn(&str) -> Option<AlarmState>) -> bool {
        match self {
            Rule::Const(b) => *b,
            Rule::State(s, n) => state_of(n) == Some(*s),
            Rule::Not(r) => !r.eval(state_of),
            Rule::And(a, b) => a.eval(state_of) && b.eval(state_of),
            Rule::Or(a, b) => a.eval(state_of) || b.eval(state_of),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates_with_precedence() {
        let r = Rule::parse(
            "ALARM(cpu) OR ALARM(\"mem high\") AND NOT OK(arn:aws:cloudwatch:us-east-1:1:alarm:x)",
        )
        .expect("parse");
        assert_eq!(
            r.alarms(),
            vec!["cpu", "mem high", "arn:aws:cloudwatch:us-east-1:1:alarm:x"]
        );
        let states = |alarm: AlarmState, mem: AlarmState, x: AlarmState| {
            move |n: &str| {
                Some(match n {
                    "cpu" => alarm,
                    "mem high" => mem,
                    _ => x,
                })
            }
        };
        use AlarmState::*;
        assert!(r.eval(&states(Alarm, Ok, Ok)));
        assert!(!r.eval(&states(Ok, Alarm, Ok)));
        assert!(r.eval(&states(Ok, Alarm, InsufficientData)));
        let p = Rule::parse("(ALARM(a) OR ALARM(b)) AND TRUE").expect("parse");
        assert!(p.eval(&|n| (n == "b").then_some(Alarm)));
        assert!(!Rule::parse("FALSE").expect("parse").eval(&|_| None));
        assert!(Rule::parse("INSUFFICIENT_DATA(a)")
            .expect("parse")
            .eval(&|_| Some(InsufficientData)));
    }

    #[test]
    fn refuses_malformed_rules() {
        for bad in [
            "ALARM(a",
            "ALARM a",
            "ALARM(a) AND",
            "BROKEN(a)",
            "ALARM(a) ALARM(b)",
            "ALARM(\"a)",
            "",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }
}
