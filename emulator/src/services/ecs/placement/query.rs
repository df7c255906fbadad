//! The ECS cluster query language, as used by `memberOf` placement constraints (and by
//! ListContainerInstances' `filter`).
//!
//! Grammar (AWS developer guide, "Create expressions to define container instances"):
//!
//! ```text
//! expression := term (("or" | "||") term)*
//! term       := unary (("and" | "&&") unary)*
//! unary      := ("not" | "!") unary | "(" expression ")" | comparison
//! comparison := subject operator [argument]
//! subject    := attribute:<name> | agentConnected | agentVersion | ec2InstanceId
//!             | registeredAt | runningTasksCount | task:group
//! operator   := == equals | != not_equals | > greater_than | >= greater_than_equal
//!             | < less_than | <= less_than_equal | exists | !exists not_exists
//!             | in | !in not_in | =~ matches | !~ not_matches
//! argument   := value | list            (none for exists / !exists; a list for in / !in)
//! list       := "[" value ("," value)* "]"   (parentheses accepted too)
//! value      := 'quoted' | "quoted" | unquoted word
//! ```
//!
//! Semantics chosen where AWS documents none (noted so callers know):
//! - `=~` / `!~` take a regular expression (AWS: Java regex) that must match the whole value.
//! - An absent attribute fails every positive test (`==`, `in`, `=~`, `>`…) and passes the negated
//!   ones (`!=`, `!in`, `!~`). An attribute set without a value compares as the empty string.
//! - `task:group` is many-valued (one group per task on the instance): the positive operators hold
//!   when any task's group satisfies them; `!=`, `!in`, `!~` are their negations (so
//!   `task:group != database` holds on an instance with no `database` task, empty ones included);
//!   `exists` means at least one task.
//! - Ordering operators compare `agentVersion` by dotted numeric components, `registeredAt` as
//!   timestamps, `runningTasksCount` as integers, attributes as numbers when both sides are numbers
//!   and as strings otherwise.
//! - Operators are restricted per subject as AWS lists them (e.g. no `>` on `ec2InstanceId`);
//!   attributes and `task:group` accept every operator.

use super::Candidate;
use regex::Regex;
use std::cmp::Ordering;

/// The longest expression ECS accepts.
pub const MAX_EXPRESSION_LENGTH: usize = 2000;

/// A parsed, validated cluster query.
#[derive(Debug, Clone)]
pub struct Query {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Cmp(Comparison),
}

#[derive(Debug, Clone)]
struct Comparison {
    subject: Subject,
    op: Op,
    args: Vec<Literal>,
    pattern: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    Attribute(String),
    AgentConnected,
    AgentVersion,
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

/// An argument, with its typed form for subjects that compare by type.
#[derive(Debug, Clone)]
struct Literal {
    text: String,
    key: Key,
}

#[derive(Debug, Clone)]
enum Key {
    Text,
    Int(i64),
    Time(f64),
    Version(Vec<u64>),
}

impl Query {
    /// Parses and validates `expr`; the error is a human-readable sentence.
    pub fn parse(expr: &str) -> Result<Query, String> {
        if expr.trim().is_empty() {
            return Err("The expression is empty.".to_string());
        }
        if expr.chars().count() > MAX_EXPRESSION_LENGTH {
            return Err(format!(
                "The expression is longer than {MAX_EXPRESSION_LENGTH} characters."
            ));
        }
        let mut p = Parser {
            src: expr,
            chars: expr.chars().collect(),
            pos: 0,
            depth: 0,
        };
        let root = p.expression()?;
        p.skip_ws();
        if p.pos < p.chars.len() {
            return Err(p.error(&format!("unexpected '{}'", p.rest_word())));
        }
        Ok(Query { root })
    }

    /// Whether the container instance satisfies the query.
    pub fn matches(&self, c: &Candidate) -> bool {
        eval(&self.root, c)
    }
}

/// The query in a canonical form that parses back to the same query: spaced symbolic operators,
/// quoted values, parentheses only where precedence needs them (so no deeper than the original).
impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        render(&self.root, f)
    }
}

fn render(n: &Node, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    // `and` binds tighter than `or`, both are left-associative: a right operand of the same
    // operator (and an `or` under an `and`) came from parentheses and keeps them.
    let operand = |n: &Node, parens: bool, f: &mut std::fmt::Formatter<'_>| {
        if parens {
            f.write_str("(")?;
            render(n, f)?;
            f.write_str(")")
        } else {
            render(n, f)
        }
    };
    match n {
        Node::Or(l, r) => {
            operand(l, false, f)?;
            f.write_str(" or ")?;
            operand(r, matches!(**r, Node::Or(..)), f)
        }
        Node::And(l, r) => {
            operand(l, matches!(**l, Node::Or(..)), f)?;
            f.write_str(" and ")?;
            operand(r, matches!(**r, Node::Or(..) | Node::And(..)), f)
        }
        Node::Not(inner) => {
            f.write_str("!")?;
            operand(inner, matches!(**inner, Node::Or(..) | Node::And(..)), f)
        }
        Node::Cmp(c) => render_comparison(c, f),
    }
}

fn render_comparison(c: &Comparison, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match &c.subject {
        Subject::Attribute(name) => write!(f, "attribute:{name}")?,
        Subject::AgentConnected => f.write_str("agentConnected")?,
        Subject::AgentVersion => f.write_str("agentVersion")?,
        Subject::Ec2InstanceId => f.write_str("ec2InstanceId")?,
        Subject::RegisteredAt => f.write_str("registeredAt")?,
        Subject::RunningTasksCount => f.write_str("runningTasksCount")?,
        Subject::TaskGroup => f.write_str("task:group")?,
    }
    write!(f, " {}", op_name(c.op))?;
    match c.op {
        Op::Exists | Op::NotExists => Ok(()),
        Op::In | Op::NotIn => {
            f.write_str(" [")?;
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                render_value(&a.text, f)?;
            }
            f.write_str("]")
        }
        _ => {
            f.write_str(" ")?;
            render_value(c.args.first().map_or("", |a| a.text.as_str()), f)
        }
    }
}

/// `'value'` with `'` escaped as `\'`. A quoted value cannot end in a backslash (`\'` would
/// escape the closing quote), so such a value, which can only have been written unquoted, stays
/// unquoted, followed by a space so that no `)` or `,` after it joins the value.
fn render_value(text: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    if text.ends_with('\\') {
        f.write_str(text)?;
        return f.write_str(" ");
    }
    f.write_str("'")?;
    f.write_str(&text.replace('\'', "\\'"))?;
    f.write_str("'")
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Parser<'a> {
    src: &'a str,
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

/// Deeper nesting than this is refused (keeps the recursion bounded).
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!(
            "Invalid expression '{}': {} at position {}.",
            self.src,
            what,
            self.pos + 1
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<char> {
        self.chars.get(self.pos + off).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    /// A keyword (`and`, `or`, `not`, case-insensitive) at the cursor, ended by a space, `(`, `!`
    /// or the end.
    fn keyword(&self, word: &str) -> bool {
        let n = word.chars().count();
        let same = word
            .chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i).is_some_and(|x| x.eq_ignore_ascii_case(&c)));
        same && self
            .peek_at(n)
            .is_none_or(|c| c.is_whitespace() || c == '(' || c == '!')
    }

    /// The word at the cursor, for error messages.
    fn rest_word(&self) -> String {
        self.chars[self.pos..]
            .iter()
            .take_while(|c| !c.is_whitespace())
            .take(40)
            .collect()
    }

    fn expression(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression nested too deeply"));
        }
        let mut left = self.term()?;
        loop {
            self.skip_ws();
            if self.starts_with("||") || self.keyword("or") {
                self.pos += 2;
            } else {
                break;
            }
            let right = self.term()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn term(&mut self) -> Result<Node, String> {
        let mut left = self.unary()?;
        loop {
            self.skip_ws();
            if self.starts_with("&&") {
                self.pos += 2;
            } else if self.keyword("and") {
                self.pos += 3;
            } else {
                break;
            }
            let right = self.unary()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, String> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("expected a subject or '(' but the expression ended")),
            Some('!') => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.error("expression nested too deeply"));
                }
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Node::Not(Box::new(inner)))
            }
            Some('(') => {
                self.pos += 1;
                let inner = self.expression()?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err(self.error("expected ')'"));
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(_) if self.keyword("not") => {
                self.pos += 3;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.error("expression nested too deeply"));
                }
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Node::Not(Box::new(inner)))
            }
            Some(_) => self.comparison().map(Node::Cmp),
        }
    }

    fn comparison(&mut self) -> Result<Comparison, String> {
        let start = self.pos;
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || "=!<>()[],'\"~".contains(c) {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        let subject = match name.as_str() {
            "" => return Err(self.error("expected a subject")),
            "agentConnected" => Subject::AgentConnected,
            "agentVersion" => Subject::AgentVersion,
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "registeredAt" => Subject::RegisteredAt,
            "runningTasksCount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            _ => match name.strip_prefix("attribute:") {
                Some(attr) if !attr.is_empty() => Subject::Attribute(attr.to_string()),
                Some(_) => {
                    self.pos = start;
                    return Err(self.error("'attribute:' needs an attribute name"));
                }
                None => {
                    self.pos = start;
                    return Err(self.error(&format!(
                        "unknown subject '{name}' (expected attribute:<name>, agentConnected, \
                         agentVersion, ec2InstanceId, registeredAt, runningTasksCount or task:group)"
                    )));
                }
            },
        };
        self.skip_ws();
        let op_pos = self.pos;
        let op = self.operator()?;
        if !operator_allowed(&subject, op) {
            self.pos = op_pos;
            return Err(self.error(&format!(
                "operator '{}' is not valid for subject '{name}'",
                op_name(op)
            )));
        }
        let texts: Vec<String> = match op {
            Op::Exists | Op::NotExists => Vec::new(),
            Op::In | Op::NotIn => self.list()?,
            _ => vec![self.value(false)?],
        };
        let mut args = Vec::with_capacity(texts.len());
        for text in texts {
            let key = match (&subject, op) {
                (_, Op::Matches | Op::NotMatches) => Key::Text,
                (Subject::RunningTasksCount, _) => match text.parse::<i64>() {
                    Ok(n) => Key::Int(n),
                    Err(_) => {
                        return Err(self
                            .error(&format!("runningTasksCount needs an integer, not '{text}'")))
                    }
                },
                (Subject::RegisteredAt, _) => match parse_time(&text) {
                    Some(t) => Key::Time(t),
                    None => {
                        return Err(self.error(&format!(
                            "registeredAt needs a date such as 2018-06-18T22:28:28Z, \
                             2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28 or 2018-06-18, \
                             not '{text}'"
                        )))
                    }
                },
                (Subject::AgentVersion, Op::Gt | Op::Ge | Op::Lt | Op::Le) => {
                    match parse_version(&text) {
                        Some(v) => Key::Version(v),
                        None => {
                            return Err(self.error(&format!(
                                "agentVersion needs a version such as 1.14.5, not '{text}'"
                            )))
                        }
                    }
                }
                _ => Key::Text,
            };
            args.push(Literal { text, key });
        }
        let pattern = match op {
            Op::Matches | Op::NotMatches => {
                let text = args.first().map(|a| a.text.as_str()).unwrap_or_default();
                match Regex::new(&format!("^(?:{text})$")) {
                    Ok(re) => Some(re),
                    Err(_) => {
                        return Err(self.error(&format!("invalid pattern '{text}'")));
                    }
                }
            }
            _ => None,
        };
        Ok(Comparison {
            subject,
            op,
            args,
            pattern,
        })
    }

    fn operator(&mut self) -> Result<Op, String> {
        const SYMBOLS: [(&str, Op); 10] = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=~", Op::Matches),
            ("!~", Op::NotMatches),
            ("!exists", Op::NotExists),
            ("!in", Op::NotIn),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        for (sym, op) in SYMBOLS {
            if self.starts_with(sym) {
                let n = sym.chars().count();
                // `!in` / `!exists` must end there (`!inside` is no operator).
                let word_op = sym.starts_with('!') && sym.len() > 2;
                if word_op
                    && self
                        .peek_at(n)
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    continue;
                }
                self.pos += n;
                return Ok(op);
            }
        }
        let mut word = String::new();
        while let Some(c) = self.peek_at(word.chars().count()) {
            if c.is_ascii_alphabetic() || c == '_' {
                word.push(c);
            } else {
                break;
            }
        }
        let op = match word.as_str() {
            "equals" => Op::Eq,
            "not_equals" => Op::Ne,
            "greater_than" => Op::Gt,
            "greater_than_equal" => Op::Ge,
            "less_than" => Op::Lt,
            "less_than_equal" => Op::Le,
            "exists" => Op::Exists,
            "not_exists" => Op::NotExists,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "matches" => Op::Matches,
            "not_matches" => Op::NotMatches,
            "" => {
                return Err(self.error(if self.peek().is_none() {
                    "expected an operator but the expression ended"
                } else {
                    "expected an operator"
                }))
            }
            other => return Err(self.error(&format!("unknown operator '{other}'"))),
        };
        self.pos += word.chars().count();
        Ok(op)
    }

    /// `[a, b]` or `(a, b)`.
    fn list(&mut self) -> Result<Vec<String>, String> {
        self.skip_ws();
        let close = match self.peek() {
            Some('[') => ']',
            Some('(') => ')',
            _ => return Err(self.error("expected a list such as [value1, value2]")),
        };
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            out.push(self.value(true)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(out);
                }
                None => return Err(self.error(&format!("expected ',' or '{close}'"))),
                Some(_) => return Err(self.error(&format!("expected ',' or '{close}'"))),
            }
        }
    }

    /// A quoted or unquoted value. Unquoted values end at whitespace, `&&`, `||`, a `)` that closes
    /// nothing opened inside the value, and in lists at `,` and `]`.
    fn value(&mut self, in_list: bool) -> Result<String, String> {
        self.skip_ws();
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.error("unterminated quoted value")),
                        Some('\\') if self.peek_at(1) == Some(q) => {
                            out.push(q);
                            self.pos += 2;
                        }
                        Some(c) if c == q => {
                            self.pos += 1;
                            return Ok(out);
                        }
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            _ => {
                let mut out = String::new();
                let mut parens = 0usize;
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || self.starts_with("&&") || self.starts_with("||") {
                        break;
                    }
                    if in_list && (c == ',' || c == ']') {
                        break;
                    }
                    if c == '(' {
                        parens += 1;
                    } else if c == ')' {
                        if parens == 0 {
                            break;
                        }
                        parens -= 1;
                    }
                    out.push(c);
                    self.pos += 1;
                }
                if out.is_empty() {
                    return Err(self.error("expected a value"));
                }
                Ok(out)
            }
        }
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Exists => "exists",
        Op::NotExists => "!exists",
        Op::In => "in",
        Op::NotIn => "!in",
        Op::Matches => "=~",
        Op::NotMatches => "!~",
    }
}

/// The operators AWS lists for each built-in subject.
fn operator_allowed(subject: &Subject, op: Op) -> bool {
    use Op::*;
    match subject {
        Subject::Attribute(_) | Subject::TaskGroup => true,
        Subject::AgentConnected | Subject::Ec2InstanceId => {
            matches!(op, Eq | Ne | In | NotIn | Matches | NotMatches)
        }
        Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
            matches!(op, Eq | Ne | Gt | Ge | Lt | Le)
        }
    }
}

/// Epoch seconds of the date formats AWS accepts for `registeredAt`: 2018-06-18T22:28:28+00:00,
/// 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 (UTC), 2018-06-18 (midnight UTC).
pub fn parse_time(text: &str) -> Option<f64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis() as f64 / 1000.0);
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis() as f64 / 1000.0);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp() as f64);
    }
    None
}

/// `1.14.5` → [1, 14, 5]; a leading `v` is allowed.
fn parse_version(text: &str) -> Option<Vec<u64>> {
    let t = text.strip_prefix('v').unwrap_or(text);
    t.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

fn cmp_versions(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    Ordering::Equal
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn eval(node: &Node, c: &Candidate) -> bool {
    match node {
        Node::And(a, b) => eval(a, c) && eval(b, c),
        Node::Or(a, b) => eval(a, c) || eval(b, c),
        Node::Not(a) => !eval(a, c),
        Node::Cmp(cmp) => eval_cmp(cmp, c),
    }
}

/// The subject's value(s) on an instance: `None` when the subject is absent.
fn subject_values(subject: &Subject, c: &Candidate) -> Option<Vec<String>> {
    match subject {
        Subject::Attribute(name) => c
            .attributes
            .get(name)
            .map(|v| vec![v.clone().unwrap_or_default()]),
        Subject::AgentConnected => Some(vec![c.agent_connected.to_string()]),
        Subject::AgentVersion => Some(vec![c.agent_version.clone()]),
        Subject::Ec2InstanceId => Some(vec![c.ec2_instance_id.clone()]),
        Subject::RegisteredAt => Some(vec![c.registered_at.to_string()]),
        Subject::RunningTasksCount => Some(vec![c.running_tasks_count.to_string()]),
        Subject::TaskGroup if c.task_groups.is_empty() => None,
        Subject::TaskGroup => Some(c.task_groups.clone()),
    }
}

fn eval_cmp(cmp: &Comparison, c: &Candidate) -> bool {
    let (positive, negate) = match cmp.op {
        Op::Ne => (Op::Eq, true),
        Op::NotIn => (Op::In, true),
        Op::NotMatches => (Op::Matches, true),
        Op::NotExists => (Op::Exists, true),
        op => (op, false),
    };
    let holds = match subject_values(&cmp.subject, c) {
        None => false,
        Some(_) if positive == Op::Exists => true,
        Some(values) => values.iter().any(|v| test_one(cmp, positive, v, c)),
    };
    holds != negate
}

/// One value against a positive operator (`==`, `in`, `=~`, ordering).
fn test_one(cmp: &Comparison, op: Op, value: &str, c: &Candidate) -> bool {
    match op {
        Op::Matches => cmp.pattern.as_ref().is_some_and(|re| re.is_match(value)),
        Op::Eq | Op::In => cmp.args.iter().any(|a| match (&a.key, &cmp.subject) {
            (Key::Text, Subject::AgentConnected) => value.eq_ignore_ascii_case(&a.text),
            (Key::Text, _) => value == a.text,
            _ => order(&cmp.subject, value, a, c) == Some(Ordering::Equal),
        }),
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let Some(arg) = cmp.args.first() else {
                return false;
            };
            match order(&cmp.subject, value, arg, c) {
                Some(o) => match op {
                    Op::Gt => o == Ordering::Greater,
                    Op::Ge => o != Ordering::Less,
                    Op::Lt => o == Ordering::Less,
                    _ => o != Ordering::Greater,
                },
                None => false,
            }
        }
        _ => false,
    }
}

/// Orders the instance's value against an argument, by the subject's type.
fn order(subject: &Subject, value: &str, arg: &Literal, c: &Candidate) -> Option<Ordering> {
    match (&arg.key, subject) {
        (Key::Int(n), _) => Some(c.running_tasks_count.cmp(n)),
        (Key::Time(t), _) => c.registered_at.partial_cmp(t),
        (Key::Version(v), _) => parse_version(value).map(|mine| cmp_versions(&mine, v)),
        (Key::Text, Subject::Attribute(_)) => {
            match (value.parse::<f64>(), arg.text.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(value.cmp(arg.text.as_str())),
            }
        }
        (Key::Text, _) => Some(value.cmp(arg.text.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn inst() -> Candidate {
        Candidate {
            arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/c/1".into(),
            ec2_instance_id: "i-abcd1234".into(),
            status: "ACTIVE".into(),
            agent_connected: true,
            agent_version: "1.14.5".into(),
            // 2018-06-18T22:28:28Z
            registered_at: 1_529_360_908.0,
            attributes: [
                ("ecs.availability-zone", Some("us-east-1a")),
                ("ecs.instance-type", Some("t2.small")),
                ("ecs.capability.task-eni", None),
                ("stack", Some("prod")),
                ("weight", Some("10")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect(),
            remaining_cpu: 1024,
            remaining_memory: 1024,
            used_tcp_ports: BTreeSet::new(),
            used_udp_ports: BTreeSet::new(),
            running_tasks_count: 1,
            task_groups: vec!["service:production".into()],
            eni_remaining: None,
        }
    }

    fn eval(expr: &str) -> bool {
        match Query::parse(expr) {
            Ok(q) => q.matches(&inst()),
            Err(e) => panic!("{expr}: {e}"),
        }
    }

    fn yes(expr: &str) {
        assert!(eval(expr), "expected true: {expr}");
    }

    fn no(expr: &str) {
        assert!(!eval(expr), "expected false: {expr}");
    }

    fn bad(expr: &str) -> String {
        match Query::parse(expr) {
            Ok(_) => panic!("accepted: {expr}"),
            Err(e) => e,
        }
    }

    #[test]
    fn aws_documented_examples() {
        yes("attribute:ecs.instance-type == t2.small");
        yes("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]");
        no("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d");
        yes(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
        );
        yes("task:group == service:production");
        no("not(task:group == service:production)");
        yes("not(task:group == database)");
        yes("runningTasksCount == 1");
        no("agentVersion < 1.14.5");
        yes("agentVersion < 1.14.10");
        yes("registeredAt < 2018-06-19");
        no("registeredAt < 2018-02-13");
        yes("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']");
    }

    #[test]
    fn equality_operators() {
        yes("attribute:stack == prod");
        yes("attribute:stack equals prod");
        yes("attribute:stack == 'prod'");
        yes("attribute:stack == \"prod\"");
        no("attribute:stack == Prod");
        yes("attribute:stack != dev");
        yes("attribute:stack not_equals dev");
        no("attribute:stack != prod");
        yes("attribute:stack==prod");
        yes("agentConnected == true");
        no("agentConnected == false");
        yes("ec2InstanceId == i-abcd1234");
    }

    #[test]
    fn ordering_operators() {
        yes("runningTasksCount > 0");
        yes("runningTasksCount >= 1");
        no("runningTasksCount > 1");
        yes("runningTasksCount < 2");
        yes("runningTasksCount <= 1");
        no("runningTasksCount less_than 1");
        yes("runningTasksCount greater_than_equal 1");
        yes("agentVersion >= 1.14.5");
        yes("agentVersion > 1.9.0"); // numeric, not lexicographic
        yes("agentVersion == 1.14.5");
        yes("agentVersion less_than_equal 1.14.5");
        yes("attribute:weight > 9"); // numbers compare as numbers
        no("attribute:weight < 9");
        yes("attribute:stack > pre"); // strings as strings
    }

    #[test]
    fn registered_at_formats() {
        yes("registeredAt == 2018-06-18T22:28:28Z");
        yes("registeredAt == 2018-06-18T22:28:28+00:00");
        yes("registeredAt == 2018-06-18T22:28:28");
        yes("registeredAt == 2018-06-19T00:28:28+02:00");
        yes("registeredAt > 2018-06-18");
        no("registeredAt < 2018-01-01T00:00:00Z");
    }

    #[test]
    fn exists_operators() {
        yes("attribute:ecs.capability.task-eni exists");
        no("attribute:ecs.capability.task-eni !exists");
        yes("attribute:missing !exists");
        yes("attribute:missing not_exists");
        no("attribute:missing exists");
        yes("task:group exists");
        // an attribute without a value compares as ""
        yes("attribute:ecs.capability.task-eni == ''");
    }

    #[test]
    fn list_operators() {
        yes("attribute:stack in [dev, prod]");
        yes("attribute:stack in (dev, prod)");
        yes("attribute:stack in [prod]");
        no("attribute:stack !in [dev, prod]");
        yes("attribute:stack not_in [dev, qa]");
        yes("agentConnected in [true]");
        yes("ec2InstanceId !in [i-1, i-2]");
        yes("task:group in [service:a, service:production]");
    }

    #[test]
    fn pattern_operators() {
        yes("attribute:ecs.instance-type =~ t2.*");
        yes("attribute:ecs.instance-type matches t2\\..*");
        no("attribute:ecs.instance-type =~ t2"); // whole value
        yes("attribute:ecs.instance-type =~ (t2|m5).small");
        yes("attribute:ecs.instance-type =~ 't2.(small|micro)'");
        yes("attribute:ecs.instance-type !~ m5.*");
        yes("attribute:ecs.instance-type not_matches m5.*");
        no("attribute:ecs.instance-type !~ t2.*");
        yes("ec2InstanceId =~ i-[0-9a-f]+");
        yes("task:group =~ service:.*");
    }

    #[test]
    fn absent_attribute_fails_positive_and_passes_negated_tests() {
        no("attribute:missing == x");
        yes("attribute:missing != x");
        no("attribute:missing in [x]");
        yes("attribute:missing !in [x]");
        no("attribute:missing =~ .*");
        yes("attribute:missing !~ x");
        no("attribute:missing > 1");
    }

    #[test]
    fn task_group_is_many_valued() {
        let mut c = inst();
        c.task_groups = vec!["service:a".into(), "family:b".into()];
        let q = |e: &str| Query::parse(e).map(|q| q.matches(&c)).unwrap_or(false);
        assert!(q("task:group == family:b"));
        assert!(q("task:group == service:a"));
        assert!(!q("task:group != family:b"));
        assert!(q("task:group != database"));
        c.task_groups.clear();
        let q = |e: &str| Query::parse(e).map(|q| q.matches(&c)).unwrap_or(false);
        assert!(q("task:group != database"));
        assert!(!q("task:group == database"));
        assert!(q("task:group !exists"));
    }

    #[test]
    fn boolean_operators_and_precedence() {
        yes("attribute:stack == prod and runningTasksCount == 1");
        yes("attribute:stack == prod && runningTasksCount == 1");
        no("attribute:stack == dev and runningTasksCount == 1");
        yes("attribute:stack == dev or runningTasksCount == 1");
        yes("attribute:stack == dev || runningTasksCount == 1");
        yes("attribute:stack == prod&&runningTasksCount == 1");
        no("not attribute:stack == prod");
        no("!attribute:stack == prod");
        yes("!(attribute:stack == dev)");
        yes("NOT (attribute:stack == dev) AND attribute:stack == prod");
        // and binds tighter than or
        yes("attribute:stack == prod or attribute:stack == dev and runningTasksCount == 5");
        no("(attribute:stack == prod or attribute:stack == dev) and runningTasksCount == 5");
        yes("((attribute:stack == prod))");
        yes("not not attribute:stack == prod");
    }

    #[test]
    fn bad_expressions_are_rejected_with_a_reason() {
        assert!(bad("").contains("empty"));
        assert!(bad("   ").contains("empty"));
        assert!(bad("foo == bar").contains("unknown subject 'foo'"));
        assert!(bad("attribute: == x").contains("attribute name"));
        assert!(bad("attribute:x").contains("operator"));
        assert!(bad("attribute:x ==").contains("value"));
        assert!(
            bad("attribute:x === y").contains("value") || bad("attribute:x === y").contains("'")
        );
        assert!(bad("attribute:x ~= y").contains("operator"));
        assert!(bad("attribute:x like y").contains("unknown operator 'like'"));
        assert!(bad("attribute:x in y").contains("list"));
        assert!(bad("attribute:x in [a, b").contains("','"));
        assert!(bad("attribute:x == 'abc").contains("unterminated"));
        assert!(bad("(attribute:x == y").contains("')'"));
        assert!(bad("attribute:x == y)").contains("unexpected"));
        assert!(bad("attribute:x == y and").contains("ended"));
        assert!(bad("attribute:x == y z").contains("unexpected 'z'"));
        assert!(bad("attribute:x =~ *.small").contains("invalid pattern"));
        assert!(bad("runningTasksCount > many").contains("integer"));
        assert!(bad("registeredAt < yesterday").contains("date"));
        assert!(bad("registeredAt < 2018-13-45").contains("date"));
        assert!(bad("agentVersion < latest").contains("version"));
        assert!(bad("ec2InstanceId > i-1").contains("not valid for subject 'ec2InstanceId'"));
        assert!(bad("agentConnected exists").contains("not valid"));
        assert!(bad("runningTasksCount in [1, 2]").contains("not valid"));
        assert!(bad("agentVersion =~ 1.*").contains("not valid"));
        assert!(bad(&"(".repeat(100)).contains("deeply"));
        let long = format!("attribute:x == {}", "a".repeat(MAX_EXPRESSION_LENGTH));
        assert!(bad(&long).contains("longer"));
        // the message names the expression and a position
        assert_eq!(
            bad("foo == bar"),
            "Invalid expression 'foo == bar': unknown subject 'foo' (expected attribute:<name>, \
             agentConnected, agentVersion, ec2InstanceId, registeredAt, runningTasksCount or \
             task:group) at position 1."
        );
    }
}
