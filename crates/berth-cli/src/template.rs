//! The part of Go's `text/template` that docker users write in `--format`, evaluated over
//! JSON values, with docker's extra functions.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming, `.Field.Chains`, `.`,
//! `$` and `$var` (with `:=`/`=` in pipelines, `range $i, $v :=`), string/raw-string/number/
//! bool/nil literals, parenthesised pipelines, pipes, `if`/`else if`/`else`/`with`/`range`/
//! `end`, comments, and the functions `json join lower upper title split truncate pad
//! println print printf len index eq ne lt le gt ge and or not slice`.
//! Values print as Go prints them (`[a b]`, `map[k:v]`, `<no value>` for a missing key).
//!
//! A hand-written evaluator rather than a crate: `gtmpl` evaluates over its own value type
//! (every JSON answer would be converted) and its printing of maps, missing keys and numbers
//! differs from Go's; the subset here is a few hundred lines.

use serde_json::{Map, Value};

/// A template that failed to parse or to execute, in Go's words where possible.
#[derive(Debug, thiserror::Error)]
#[error("template: {0}")]
pub struct Error(pub String);

type R<T> = Result<T, Error>;

fn err<T>(s: impl Into<String>) -> R<T> {
    Err(Error(s.into()))
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` on dot (`.` alone is an empty chain).
    Field(Vec<String>),
    /// `$x.A.B`
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    /// `(pipe).A`
    Sub(Box<Pipe>, Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(Value),
    LParen,
    RParen(Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

impl Template {
    /// Parses `src`; errors name what is wrong.
    pub fn parse(src: &str) -> R<Template> {
        let mut pieces: Vec<Result<String, Vec<Tok>>> = Vec::new();
        let mut rest = src;
        let mut trim_next = false;
        while !rest.is_empty() {
            let Some(start) = rest.find("{{") else {
                let mut t = rest.to_string();
                if trim_next {
                    t = t.trim_start().to_string();
                }
                pieces.push(Ok(t));
                break;
            };
            let mut text = rest[..start].to_string();
            if trim_next {
                text = text.trim_start().to_string();
            }
            let mut inner = &rest[start + 2..];
            if inner.starts_with("- ")
                || inner.starts_with("-\t")
                || inner.starts_with("-\n")
                || inner.starts_with("-\r")
            {
                text = text.trim_end().to_string();
                inner = &inner[1..];
            }
            pieces.push(Ok(text));
            if inner.trim_start().starts_with("/*") {
                let Some(e) = inner.find("*/") else {
                    return err("unclosed comment");
                };
                let after = &inner[e + 2..];
                let after_t = after.trim_start();
                let (trim, after) = if let Some(a) = after_t.strip_prefix("-}}") {
                    (true, a)
                } else if let Some(a) = after_t.strip_prefix("}}") {
                    (false, a)
                } else {
                    return err("comment ends before closing delimiter");
                };
                trim_next = trim;
                rest = after;
                continue;
            }
            let (toks, consumed, trim) = lex(inner)?;
            pieces.push(Err(toks));
            trim_next = trim;
            rest = &inner[consumed..];
        }
        let mut it = pieces.into_iter().peekable();
        let (nodes, end) = parse_list(&mut it)?;
        match end {
            Some(Stop::End) => return err("unexpected {{end}}"),
            Some(Stop::Else(_)) => return err("unexpected {{else}}"),
            None => {}
        }
        Ok(Template { nodes })
    }

    /// Runs the template with `data` as dot.
    pub fn execute(&self, data: &Value) -> R<String> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        exec_list(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Result<String, Vec<Tok>>>>;

/// What stopped [`parse_list`]: `{{end}}`, `{{else}}` or `{{else if …}}` (its tokens).
enum Stop {
    End,
    Else(Vec<Tok>),
}

/// Parses nodes until `end`/`else` (or the end of input, `None`).
fn parse_list(it: &mut Pieces) -> R<(Vec<Node>, Option<Stop>)> {
    let mut nodes = Vec::new();
    while let Some(p) = it.next() {
        match p {
            Ok(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
            }
            Err(toks) => match toks.first() {
                Some(Tok::Ident(k)) if k == "end" => return Ok((nodes, Some(Stop::End))),
                Some(Tok::Ident(k)) if k == "else" => {
                    return Ok((nodes, Some(Stop::Else(toks[1..].to_vec()))));
                }
                Some(Tok::Ident(k)) if k == "if" || k == "with" || k == "range" => {
                    let kw = k.clone();
                    let node = parse_block(&kw, &toks[1..], it)?;
                    nodes.push(node);
                }
                _ => nodes.push(Node::Action(parse_pipe(&toks)?)),
            },
        }
    }
    Ok((nodes, None))
}

fn parse_block(kw: &str, toks: &[Tok], it: &mut Pieces) -> R<Node> {
    let pipe = parse_pipe(toks)?;
    let (body, end) = parse_list(it)?;
    let mut els = Vec::new();
    match end {
        Some(Stop::End) => {}
        Some(Stop::Else(rest)) if rest.is_empty() => {
            let (e, end2) = parse_list(it)?;
            if !matches!(end2, Some(Stop::End)) {
                return err(format!("missing {{{{end}}}} for {kw}"));
            }
            els = e;
        }
        Some(Stop::Else(rest)) => match rest.first() {
            Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                let k = k.clone();
                els = vec![parse_block(&k, &rest[1..], it)?];
            }
            _ => return err("unexpected tokens after else"),
        },
        None => return err(format!("missing {{{{end}}}} for {kw}")),
    }
    Ok(match kw {
        "if" => Node::If(pipe, body, els),
        "with" => Node::With(pipe, body, els),
        _ => Node::Range(pipe, body, els),
    })
}

/// Lexes one action; returns tokens, bytes consumed (through `}}`) and right-trim.
fn lex(s: &str) -> R<(Vec<Tok>, usize, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    let fields = |i: &mut usize| -> Vec<String> {
        let mut f = Vec::new();
        while *i < b.len() && b[*i] == b'.' {
            let st = *i + 1;
            let mut j = st;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j == st {
                break;
            }
            f.push(s[st..j].to_string());
            *i = j;
        }
        f
    };
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return err("unclosed action");
        }
        if s[i..].starts_with("-}}") && i > 0 && b[i - 1].is_ascii_whitespace() {
            return Ok((toks, i + 3, true));
        }
        if s[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        let c = b[i];
        match c {
            b'.' => {
                if i + 1 < b.len() && (b[i + 1].is_ascii_alphabetic() || b[i + 1] == b'_') {
                    let f = fields(&mut i);
                    toks.push(Tok::Dot(f));
                } else {
                    i += 1;
                    toks.push(Tok::Dot(vec![]));
                }
            }
            b'$' => {
                let st = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let name = s[st..i].to_string();
                let f = fields(&mut i);
                toks.push(Tok::Var(name, f));
            }
            b'"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    if i >= b.len() {
                        return err("unterminated quoted string");
                    }
                    let ch = s[i..].chars().next().unwrap_or('"');
                    i += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\\' => {
                            let e = s[i..].chars().next().unwrap_or('\\');
                            i += e.len_utf8();
                            v.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                o => o,
                            });
                        }
                        o => v.push(o),
                    }
                }
                toks.push(Tok::Str(v));
            }
            b'`' => {
                let Some(e) = s[i + 1..].find('`') else {
                    return err("unterminated raw quoted string");
                };
                toks.push(Tok::Str(s[i + 1..i + 1 + e].to_string()));
                i += e + 2;
            }
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                i += 1;
                let f = fields(&mut i);
                toks.push(Tok::RParen(f));
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'\'' => {
                let ch = s[i + 1..].chars().next().unwrap_or('\'');
                let end = i + 1 + ch.len_utf8();
                if b.get(end) != Some(&b'\'') {
                    return err("bad character constant");
                }
                toks.push(Tok::Num(Value::from(ch as u32)));
                i = end + 1;
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let st = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                let t = &s[st..i];
                let v = if let Ok(n) = t.parse::<i64>() {
                    Value::from(n)
                } else if let Ok(f) = t.parse::<f64>() {
                    Value::from(f)
                } else {
                    return err(format!("bad number syntax: {t:?}"));
                };
                toks.push(Tok::Num(v));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let st = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Ident(s[st..i].to_string()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return err(format!("unexpected {ch:?} in command"));
            }
        }
    }
}

fn parse_pipe(toks: &[Tok]) -> R<Pipe> {
    let mut decl = Vec::new();
    let mut assign = false;
    let mut t = toks;
    // `$a := …`, `$a, $b := …`, `$a = …`
    let decl_end = t
        .iter()
        .position(|x| *x == Tok::Declare || *x == Tok::Assign);
    if let Some(p) = decl_end
        && t[..p]
            .iter()
            .all(|x| matches!(x, Tok::Var(_, f) if f.is_empty()) || *x == Tok::Comma)
        && p > 0
    {
        for x in &t[..p] {
            if let Tok::Var(n, _) = x {
                decl.push(n.clone());
            }
        }
        assign = t[p] == Tok::Assign;
        t = &t[p + 1..];
    }
    let mut pos = 0;
    let pipe = parse_cmds(t, &mut pos, false)?;
    if pos != t.len() {
        return err("unexpected \")\" in command");
    }
    Ok(Pipe {
        decl,
        assign,
        cmds: pipe,
    })
}

fn parse_cmds(t: &[Tok], pos: &mut usize, in_paren: bool) -> R<Vec<Vec<Arg>>> {
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    while *pos < t.len() {
        let tok = &t[*pos];
        *pos += 1;
        match tok {
            Tok::Dot(f) => cur.push(Arg::Field(f.clone())),
            Tok::Var(n, f) => cur.push(Arg::Var(n.clone(), f.clone())),
            Tok::Str(s) => cur.push(Arg::Lit(Value::String(s.clone()))),
            Tok::Num(n) => cur.push(Arg::Lit(n.clone())),
            Tok::Ident(i) => cur.push(match i.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Null),
                _ => Arg::Func(i.clone()),
            }),
            Tok::LParen => {
                let inner = parse_cmds(t, pos, true)?;
                let Some(Tok::RParen(f)) = t.get(*pos - 1) else {
                    return err("unclosed left paren");
                };
                cur.push(Arg::Sub(
                    Box::new(Pipe {
                        decl: vec![],
                        assign: false,
                        cmds: inner,
                    }),
                    f.clone(),
                ));
            }
            Tok::RParen(_) => {
                if !in_paren {
                    return err("unexpected right paren");
                }
                if cur.is_empty() {
                    return err("missing command");
                }
                cmds.push(cur);
                return Ok(cmds);
            }
            Tok::Pipe => {
                if cur.is_empty() {
                    return err("missing command before |");
                }
                cmds.push(std::mem::take(&mut cur));
            }
            Tok::Comma | Tok::Declare | Tok::Assign => return err("unexpected token in command"),
        }
    }
    if in_paren {
        return err("unclosed left paren");
    }
    if cur.is_empty() {
        return err("missing value for command");
    }
    cmds.push(cur);
    Ok(cmds)
}

type Vars = Vec<(String, Value)>;

fn exec_list(nodes: &[Node], dot: &Value, vars: &mut Vars, out: &mut String) -> R<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&print(&v));
                }
            }
            Node::If(p, a, b) => {
                let mark = vars.len();
                let v = eval_pipe(p, dot, vars)?;
                let r = if truth(&v) {
                    exec_list(a, dot, vars, out)
                } else {
                    exec_list(b, dot, vars, out)
                };
                vars.truncate(mark);
                r?;
            }
            Node::With(p, a, b) => {
                let mark = vars.len();
                let v = eval_pipe(p, dot, vars)?;
                let r = if truth(&v) {
                    exec_list(a, &v, vars, out)
                } else {
                    exec_list(b, dot, vars, out)
                };
                vars.truncate(mark);
                r?;
            }
            Node::Range(p, a, b) => {
                let mark = vars.len();
                let np = Pipe {
                    decl: vec![],
                    assign: false,
                    cmds: p.cmds.clone(),
                };
                let v = eval_pipe(&np, dot, vars)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x.clone()))
                        .collect(),
                    Value::Object(m) => {
                        let mut k: Vec<_> = m.iter().collect();
                        k.sort_by(|x, y| x.0.cmp(y.0));
                        k.into_iter()
                            .map(|(k, v)| (Value::String(k.clone()), v.clone()))
                            .collect()
                    }
                    Value::Null => vec![],
                    Value::Number(n) => (0..n.as_i64().unwrap_or(0))
                        .map(|i| (Value::from(i), Value::from(i)))
                        .collect(),
                    _ => return err(format!("range can't iterate over {}", print(&v))),
                };
                if items.is_empty() {
                    exec_list(b, dot, vars, out)?;
                }
                for (k, x) in items {
                    let m2 = vars.len();
                    match p.decl.len() {
                        0 => {}
                        1 => vars.push((p.decl[0].clone(), x.clone())),
                        _ => {
                            vars.push((p.decl[0].clone(), k));
                            vars.push((p.decl[1].clone(), x.clone()));
                        }
                    }
                    exec_list(a, &x, vars, out)?;
                    vars.truncate(m2);
                }
                vars.truncate(mark);
            }
        }
    }
    Ok(())
}

fn eval_pipe(p: &Pipe, dot: &Value, vars: &mut Vars) -> R<Value> {
    let mut prev: Option<Value> = None;
    for cmd in &p.cmds {
        prev = Some(eval_cmd(cmd, dot, vars, prev)?);
    }
    let v = prev.unwrap_or(Value::Null);
    if let Some(name) = p.decl.first() {
        if p.assign {
            match vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = v.clone(),
                None => return err(format!("undefined variable: {name}")),
            }
        } else {
            vars.push((name.clone(), v.clone()));
        }
    }
    Ok(v)
}

/// Go's "<no value>" for a missing map key: a marker distinct from JSON null.
const NO_VALUE: &str = "\u{0}<no value>";

fn field(mut v: Value, fields: &[String]) -> R<Value> {
    for f in fields {
        v = match v {
            Value::Object(mut m) => match m.remove(f) {
                Some(x) => x,
                None => Value::String(NO_VALUE.into()),
            },
            Value::Null => return Ok(Value::Null),
            Value::String(s) if s == NO_VALUE => Value::String(s),
            other => {
                return err(format!(
                    "can't evaluate field {f} in type {}",
                    type_name(&other)
                ));
            }
        };
    }
    Ok(v)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn eval_arg(a: &Arg, dot: &Value, vars: &mut Vars) -> R<Value> {
    match a {
        Arg::Field(f) => field(dot.clone(), f),
        Arg::Var(n, f) => {
            let v = vars
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| Error(format!("undefined variable \"{n}\"")))?;
            field(v, f)
        }
        Arg::Lit(v) => Ok(v.clone()),
        Arg::Func(f) => call(f, vec![], dot),
        Arg::Sub(p, f) => {
            let v = eval_pipe(p, dot, vars)?;
            field(v, f)
        }
    }
}

fn eval_cmd(cmd: &[Arg], dot: &Value, vars: &mut Vars, prev: Option<Value>) -> R<Value> {
    match &cmd[0] {
        Arg::Func(f) => {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(eval_arg(a, dot, vars)?);
            }
            if let Some(p) = prev {
                args.push(p);
            }
            call(f, args, dot)
        }
        a => {
            if cmd.len() > 1 || prev.is_some() {
                // `.Label "key"`-style method calls on docker's contexts: field holds a map.
                if let Arg::Field(f) = a
                    && let Some(Arg::Lit(Value::String(k))) = cmd.get(1)
                {
                    // docker's `.Label "key"`: rows keep their labels under a hidden key.
                    let f: Vec<String> = if f.len() == 1 && f[0] == "Label" {
                        vec!["\u{0}labels".to_string()]
                    } else {
                        f.clone()
                    };
                    let m = field(dot.clone(), &f)?;
                    return Ok(m.get(k).cloned().unwrap_or(Value::String(String::new())));
                }
                return err("can't give argument to non-function");
            }
            eval_arg(a, dot, vars)
        }
    }
}

fn s(v: &Value) -> String {
    print(v)
}

fn num(v: &Value) -> R<f64> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s
            .parse()
            .map_err(|_| Error(format!("expected number, got {s:?}"))),
        _ => err(format!("expected number, got {}", print(v))),
    }
}

fn call(name: &str, a: Vec<Value>, _dot: &Value) -> R<Value> {
    let need = |n: usize| -> R<()> {
        if a.len() != n {
            return err(format!(
                "wrong number of args for {name}: want {n} got {}",
                a.len()
            ));
        }
        Ok(())
    };
    Ok(match name {
        "json" => {
            need(1)?;
            let mut v = if matches!(&a[0], Value::String(x) if x == NO_VALUE) {
                Value::Null
            } else {
                a[0].clone()
            };
            if let Value::Object(m) = &mut v {
                m.retain(|k, _| !k.starts_with('\u{0}'));
            }
            Value::String(crate::format::go_json(&v))
        }
        "join" => {
            need(2)?;
            let parts: Vec<String> = match &a[0] {
                Value::Array(x) => x.iter().map(s).collect(),
                Value::Null => vec![],
                o => vec![s(o)],
            };
            Value::String(parts.join(&s(&a[1])))
        }
        "split" => {
            need(2)?;
            let sep = s(&a[1]);
            let src = s(&a[0]);
            let parts: Vec<Value> = if sep.is_empty() {
                src.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                src.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Value::Array(parts)
        }
        "lower" => {
            need(1)?;
            Value::String(s(&a[0]).to_lowercase())
        }
        "upper" => {
            need(1)?;
            Value::String(s(&a[0]).to_uppercase())
        }
        "title" => {
            need(1)?;
            let mut o = String::new();
            let mut prev_letter = false;
            for c in s(&a[0]).chars() {
                if !prev_letter {
                    o.extend(c.to_uppercase());
                } else {
                    o.push(c);
                }
                prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
            }
            Value::String(o)
        }
        "truncate" => {
            need(2)?;
            let n = num(&a[1])? as usize;
            Value::String(s(&a[0]).chars().take(n).collect())
        }
        "pad" => {
            need(3)?;
            let l = num(&a[1])? as usize;
            let r = num(&a[2])? as usize;
            Value::String(format!("{}{}{}", " ".repeat(l), s(&a[0]), " ".repeat(r)))
        }
        "println" => Value::String(go_print(&a, true) + "\n"),
        "print" => Value::String(go_print(&a, false)),
        "printf" => {
            if a.is_empty() {
                return err("wrong number of args for printf");
            }
            Value::String(printf(&s(&a[0]), &a[1..]))
        }
        "len" => {
            need(1)?;
            Value::from(match &a[0] {
                Value::Array(x) => x.len(),
                Value::Object(m) => m.len(),
                Value::String(x) => x.len(),
                Value::Null => 0,
                o => return err(format!("len of {}", type_name(o))),
            })
        }
        "index" => {
            if a.is_empty() {
                return err("wrong number of args for index");
            }
            let mut v = a[0].clone();
            for k in &a[1..] {
                v = match (&v, k) {
                    (Value::Array(x), _) => x
                        .get(num(k)? as usize)
                        .cloned()
                        .ok_or_else(|| Error("index out of range".into()))?,
                    (Value::Object(m), _) => m.get(&s(k)).cloned().unwrap_or(Value::Null),
                    (Value::Null, _) => Value::Null,
                    _ => return err(format!("can't index item of type {}", type_name(&v))),
                };
            }
            v
        }
        "slice" => {
            if a.is_empty() {
                return err("wrong number of args for slice");
            }
            let st = a.get(1).map(num).transpose()?.unwrap_or(0.0) as usize;
            match &a[0] {
                Value::String(x) => {
                    let e = a
                        .get(2)
                        .map(num)
                        .transpose()?
                        .map_or(x.len(), |e| e as usize);
                    Value::String(x.get(st..e).unwrap_or("").to_string())
                }
                Value::Array(x) => {
                    let e = a
                        .get(2)
                        .map(num)
                        .transpose()?
                        .map_or(x.len(), |e| e as usize);
                    Value::Array(x.get(st..e).unwrap_or(&[]).to_vec())
                }
                _ => return err("can't slice"),
            }
        }
        "not" => {
            need(1)?;
            Value::Bool(!truth(&a[0]))
        }
        "and" => a
            .iter()
            .find(|v| !truth(v))
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => a
            .iter()
            .find(|v| truth(v))
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Null),
        "eq" => {
            if a.len() < 2 {
                return err("missing argument for comparison");
            }
            Value::Bool(a[1..].iter().any(|x| eq(&a[0], x)))
        }
        "ne" => {
            need(2)?;
            Value::Bool(!eq(&a[0], &a[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            need(2)?;
            let o = match (&a[0], &a[1]) {
                (Value::String(x), Value::String(y)) => x.cmp(y),
                (x, y) => num(x)?
                    .partial_cmp(&num(y)?)
                    .unwrap_or(std::cmp::Ordering::Equal),
            };
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "html" | "urlquery" | "js" => Value::String(go_print(&a, false)),
        _ => return err(format!("function \"{name}\" not defined")),
    })
}

fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn go_print(a: &[Value], spaces_always: bool) -> String {
    let mut o = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && (spaces_always || (!v.is_string() && !a[i - 1].is_string())) {
            o.push(' ');
        }
        o.push_str(&print(v));
    }
    o
}

fn printf(f: &str, args: &[Value]) -> String {
    let mut o = String::new();
    let mut it = f.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            o.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&n) = it.peek() {
            if n.is_ascii_digit() || n == '-' || n == '.' {
                spec.push(n);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else { break };
        if verb == '%' {
            o.push('%');
            continue;
        }
        let v = args.get(ai).cloned().unwrap_or(Value::Null);
        ai += 1;
        let text = match verb {
            'q' => serde_json::to_string(&s(&v)).unwrap_or_default(),
            'd' => num(&v)
                .map(|n| (n as i64).to_string())
                .unwrap_or_else(|_| s(&v)),
            _ => s(&v),
        };
        let (left, w) = match spec.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, spec.as_str()),
        };
        let w: usize = w
            .split('.')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let pad = w.saturating_sub(text.chars().count());
        if left {
            o.push_str(&text);
            o.push_str(&" ".repeat(pad));
        } else {
            o.push_str(&" ".repeat(pad));
            o.push_str(&text);
        }
    }
    o
}

/// Go's truthiness: false, 0, nil, and empty strings, slices and maps are false.
pub fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != NO_VALUE,
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A value as Go's `fmt.Print` shows it.
pub fn print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) if s == NO_VALUE => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => print_map(m),
    }
}

fn print_map(m: &Map<String, Value>) -> String {
    let mut k: Vec<_> = m.iter().collect();
    k.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = k
        .into_iter()
        .map(|(k, v)| format!("{k}:{}", print(v)))
        .collect();
    format!("map[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().execute(&v).unwrap()
    }

    #[test]
    fn fields_pipes_and_functions() {
        let v = json!({"Name":"/web","State":{"Pid":42,"Running":true},"Args":["a","b"],
                       "Labels":{"x":"1","a":"2"},"F":1.5});
        assert_eq!(run("{{.State.Pid}}", v.clone()), "42");
        assert_eq!(run("{{.Missing}}", v.clone()), "<no value>");
        assert_eq!(
            run("{{json .State}}", v.clone()),
            r#"{"Pid":42,"Running":true}"#
        );
        assert_eq!(run("{{join .Args \",\"}}", v.clone()), "a,b");
        assert_eq!(
            run("{{.Args}} {{.Labels}}", v.clone()),
            "[a b] map[a:2 x:1]"
        );
        assert_eq!(run("{{.Name | upper}}", v.clone()), "/WEB");
        assert_eq!(run("{{truncate .Name 3}}", v.clone()), "/we");
        assert_eq!(run("{{pad .Name 1 2}}|", v.clone()), " /web  |");
        assert_eq!(run("{{title \"hello world\"}}", v.clone()), "Hello World");
        assert_eq!(
            run(
                "{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}",
                v.clone()
            ),
            "a=2;x=1;"
        );
        assert_eq!(run("{{range .Args}}<{{.}}>{{end}}", v.clone()), "<a><b>");
        assert_eq!(
            run("{{if .State.Running}}up{{else}}down{{end}}", v.clone()),
            "up"
        );
        assert_eq!(
            run(
                "{{if eq .State.Pid 1}}one{{else if gt .State.Pid 40}}big{{end}}",
                v.clone()
            ),
            "big"
        );
        assert_eq!(
            run("{{with .State}}{{.Pid}}{{end}} {{- \" x\" -}} !", v.clone()),
            "42 x!"
        );
        assert_eq!(run("{{index .Labels \"x\"}}", v.clone()), "1");
        assert_eq!(run("{{(split \"a:b\" \":\")}}", v.clone()), "[a b]");
        assert_eq!(run("{{$x := .Name}}{{$x}}", v.clone()), "/web");
        assert_eq!(run("{{println .F}}", v.clone()), "1.5\n");
        assert_eq!(run("{{printf \"%-4s|%d\" \"a\" 3}}", v.clone()), "a   |3");
        assert_eq!(run("{{/* c */}}x", v.clone()), "x");
        assert_eq!(run("{{len .Args}}", v), "2");
    }

    #[test]
    fn bad_templates_say_why() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let e = Template::parse("{{nosuch .A}}")
            .unwrap()
            .execute(&json!({}))
            .unwrap_err();
        assert!(e.to_string().contains("\"nosuch\" not defined"), "{e}");
    }
}
