//! SQL text -> our [`Expr`], through sqlparser's generic dialect.
//!
//! sqlparser accepts far more than we support; everything outside our language is
//! rejected here with a message naming the construct and, where possible, its position
//! in the expression text.

use sqlparser::ast::{
    self as sql, BinaryOperator, CastKind, CeilFloorKind, DateTimeField, FunctionArg,
    FunctionArgExpr, FunctionArguments, ObjectNamePart, Spanned, TrimWhereField, UnaryOperator,
    Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use orch_spec::{suggest, DataType};

use crate::ast::{BinaryOp, Expr, Literal, UnaryOp};
use crate::check::{parse_date, parse_timestamp};
use crate::error::ExprError;
use crate::functions::{Func, AGGREGATES, WALL_CLOCK};

/// Deepest nesting of our expression tree. Every pass over expressions (ours and polars')
/// recurses, so the depth is bounded well below what a 2 MiB thread stack can hold.
pub const MAX_DEPTH: usize = 256;

/// Longest expression in tokens; bounds sqlparser's own recursion over operator chains.
const MAX_TOKENS: usize = 10_000;

/// Most binary operators in one expression (see `parse_inner`).
const MAX_OPERATORS: usize = 2_000;

fn is_binary_operator(t: &Token) -> bool {
    use sqlparser::keywords::Keyword;
    match t {
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::DoubleColon => true,
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND | Keyword::OR | Keyword::NOT | Keyword::IS
        ),
        _ => false,
    }
}

/// Parses one expression. Syntax errors say where (column, and line when the text spans
/// several lines).
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    // sqlparser is not ours; a panic inside it must still surface as a user error.
    match std::panic::catch_unwind(|| parse_inner(src)) {
        Ok(r) => r,
        Err(_) => Err(
            ExprError::new("internal error while parsing the expression")
                .hint("please report this expression to the orchestrator maintainers"),
        ),
    }
}

fn parse_inner(src: &str) -> Result<Expr, ExprError> {
    parse_unhinted(src).map_err(|mut e| {
        const PARAM_HINT: &str =
            "`${name}` must name a pipeline parameter; undefined parameters are left in the text";
        if src.contains("${") && !e.hints.iter().any(|h| h == PARAM_HINT) {
            e.hints.push(PARAM_HINT.to_string());
        }
        e
    })
}

fn parse_unhinted(src: &str) -> Result<Expr, ExprError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, src)
        .tokenize_with_location()
        .map_err(|e| syntax_error(src, &e.message, Some((e.location.line, e.location.column))))?;
    let meaningful = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .count();
    if meaningful > MAX_TOKENS {
        return Err(ExprError::new(format!(
            "expression is too long ({meaningful} tokens; at most {MAX_TOKENS})"
        ))
        .hint("split it into several derive steps"));
    }
    // Long operator chains parse iteratively but nest deeply; sqlparser's Display, Drop and
    // span code recurse over them, so bound them before building the tree.
    let operators = tokens
        .iter()
        .filter(|t| is_binary_operator(&t.token))
        .count();
    if operators > MAX_OPERATORS {
        return Err(ExprError::new(format!(
            "expression is too long ({operators} operators; at most {MAX_OPERATORS})"
        ))
        .hint("split it into several derive steps, or use IN (...) instead of long OR chains"));
    }
    if meaningful == 0
        || (meaningful == 1 && matches!(tokens.last().map(|t| &t.token), Some(Token::EOF)))
    {
        return Err(ExprError::new("the expression is empty"));
    }
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let parsed = parser.parse_expr().map_err(|e| match e {
        ParserError::RecursionLimitExceeded => ExprError::new("expression is nested too deeply")
            .hint("split it into several derive steps"),
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => parser_error(src, &m),
    })?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        let mut err = syntax_error(
            src,
            &format!("unexpected `{}` after a complete expression", next.token),
            Some((next.span.start.line, next.span.start.column)),
        );
        if matches!(&parsed, sql::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("case"))
        {
            err =
                err.hint("a CASE expression reads CASE WHEN condition THEN value [ELSE value] END");
        } else if matches!(next.token, Token::Word(_))
            || matches!(next.token, Token::DoubleQuotedString(_))
        {
            err = err.hint("is an operator or a comma missing? Column names with spaces need double quotes: \"my column\"");
        }
        return Err(err);
    }
    Converter { src }.expr(&parsed, 0)
}

/// sqlparser's messages end in " at Line: L, Column: C" (or carry no position at EOF).
fn parser_error(src: &str, message: &str) -> ExprError {
    let (text, pos) = match message.rfind(" at Line: ") {
        Some(i) => {
            let loc = &message[i + " at Line: ".len()..];
            let mut nums = loc
                .split(", Column: ")
                .map(|n| n.trim().parse::<u64>().ok());
            match (nums.next().flatten(), nums.next().flatten()) {
                (Some(l), Some(c)) => (&message[..i], Some((l, c))),
                _ => (message, None),
            }
        }
        None => (message, None),
    };
    // "Expected: an expression, found: )" -> "expected an expression, found `)`"
    let text = match text
        .strip_prefix("Expected: ")
        .and_then(|r| r.rsplit_once(", found: "))
    {
        Some((want, "EOF")) => {
            format!("expected {want}, found the end of the expression")
        }
        Some((want, found)) => format!("expected {want}, found `{found}`"),
        None => lowercase_first(text),
    };
    let mut err = syntax_error(src, &text, pos);
    if src.contains('"') {
        err = err.hint("double quotes are for column names; strings use single quotes: 'text'");
    }
    err
}

fn syntax_error(src: &str, text: &str, pos: Option<(u64, u64)>) -> ExprError {
    let at = match pos {
        Some((line, col)) if line > 0 => position(src, line, col),
        _ => "at the end".to_string(),
    };
    ExprError::new(format!("syntax error {at}: {}", lowercase_first(text)))
}

fn position(src: &str, line: u64, col: u64) -> String {
    if src.contains('\n') {
        format!("at line {line}, column {col}")
    } else {
        format!("at column {col}")
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

struct Converter<'a> {
    src: &'a str,
}

impl Converter<'_> {
    /// An error located at `node`, when sqlparser knows where it is.
    fn err_at(&self, node: &dyn Spanned, message: impl Into<String>) -> ExprError {
        let message = message.into();
        let span = node.span();
        if span.start.line == 0 {
            ExprError::new(message)
        } else {
            ExprError::new(format!(
                "{message} ({})",
                position(self.src, span.start.line, span.start.column)
            ))
        }
    }

    fn unsupported(&self, node: &sql::Expr, what: &str) -> ExprError {
        let text = truncate(&node.to_string(), 60);
        self.err_at(
            node,
            format!("{what} `{text}` is not supported in expressions"),
        )
        .hint("see docs/expressions.md for the supported syntax and functions")
    }

    fn boxed(&self, e: &sql::Expr, depth: usize) -> Result<Box<Expr>, ExprError> {
        self.expr(e, depth).map(Box::new)
    }

    fn list(&self, items: &[sql::Expr], depth: usize) -> Result<Vec<Expr>, ExprError> {
        items.iter().map(|e| self.expr(e, depth)).collect()
    }

    fn expr(&self, e: &sql::Expr, depth: usize) -> Result<Expr, ExprError> {
        if depth > MAX_DEPTH {
            // No span here: computing one walks the whole (deep) subtree.
            return Err(ExprError::new(format!(
                "expression is nested too deeply (more than {MAX_DEPTH} levels)"
            ))
            .hint(
                "split it into several derive steps, or use IN (...) instead of long OR chains",
            ));
        }
        let d = depth + 1;
        Ok(match e {
            sql::Expr::Identifier(ident) => Expr::Column(ident.value.clone()),
            sql::Expr::CompoundIdentifier(parts) => {
                let joined: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
                return Err(self
                    .err_at(e, format!("qualified names such as `{}` are not supported", joined.join(".")))
                    .hint(format!("if the column name contains a dot, quote it: \"{}\"", joined.join("."))));
            }
            sql::Expr::Value(v) => Expr::Literal(self.value(e, &v.value)?),
            sql::Expr::TypedString(ts) => {
                let text = match &ts.value.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    _ => return Err(self.unsupported(e, "literal")),
                };
                match &ts.data_type {
                    sql::DataType::Date => Expr::Literal(Literal::Date(parse_date(&text).ok_or_else(|| {
                        self.err_at(e, format!("invalid DATE literal '{text}'")).hint("write dates as DATE 'yyyy-mm-dd'")
                    })?)),
                    sql::DataType::Timestamp(_, sql::TimezoneInfo::None) | sql::DataType::Datetime(_) => {
                        Expr::Literal(Literal::Timestamp(parse_timestamp(&text).ok_or_else(|| {
                            self.err_at(e, format!("invalid TIMESTAMP literal '{text}'"))
                                .hint("write timestamps as TIMESTAMP 'yyyy-mm-dd HH:MM:SS[.ffffff]'")
                        })?))
                    }
                    _ => return Err(self.unsupported(e, "typed literal")),
                }
            }
            sql::Expr::Nested(inner) => self.expr(inner, d)?,
            sql::Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Plus => self.expr(expr, d)?,
                UnaryOperator::Minus => match &**expr {
                    // Fold `-5` (but not `-(5)`) into one literal so that i64::MIN is
                    // writable and negative literals print and re-parse identically.
                    sql::Expr::Value(sql::ValueWithSpan { value: Value::Number(n, _), .. }) => {
                        Expr::Literal(self.number(e, &format!("-{n}"))?)
                    }
                    _ => Expr::Unary { op: UnaryOp::Neg, expr: self.boxed(expr, d)? },
                },
                UnaryOperator::Not => Expr::Unary { op: UnaryOp::Not, expr: self.boxed(expr, d)? },
                _ => return Err(self.unsupported(e, "operator")),
            },
            sql::Expr::BinaryOp { left, op, right } => {
                let op = match op {
                    BinaryOperator::Plus => BinaryOp::Add,
                    BinaryOperator::Minus => BinaryOp::Sub,
                    BinaryOperator::Multiply => BinaryOp::Mul,
                    BinaryOperator::Divide => BinaryOp::Div,
                    BinaryOperator::Modulo => BinaryOp::Mod,
                    BinaryOperator::StringConcat => BinaryOp::Concat,
                    BinaryOperator::Eq => BinaryOp::Eq,
                    BinaryOperator::NotEq => BinaryOp::NotEq,
                    BinaryOperator::Lt => BinaryOp::Lt,
                    BinaryOperator::LtEq => BinaryOp::LtEq,
                    BinaryOperator::Gt => BinaryOp::Gt,
                    BinaryOperator::GtEq => BinaryOp::GtEq,
                    BinaryOperator::And => BinaryOp::And,
                    BinaryOperator::Or => BinaryOp::Or,
                    other => {
                        return Err(ExprError::new(format!("operator `{other}` is not supported"))
                            .hint("operators are + - * / % || = <> != < <= > >= AND OR NOT"))
                    }
                };
                Expr::Binary { op, left: self.boxed(left, d)?, right: self.boxed(right, d)? }
            }
            sql::Expr::Case { operand, conditions, else_result, .. } => Expr::Case {
                operand: operand.as_ref().map(|o| self.boxed(o, d)).transpose()?,
                branches: conditions
                    .iter()
                    .map(|c| Ok((self.expr(&c.condition, d)?, self.expr(&c.result, d)?)))
                    .collect::<Result<_, ExprError>>()?,
                otherwise: else_result.as_ref().map(|o| self.boxed(o, d)).transpose()?,
            },
            sql::Expr::Cast { kind, expr, data_type, array, format } => {
                if *array || format.is_some() {
                    return Err(self.unsupported(e, "cast"));
                }
                let try_cast = match kind {
                    CastKind::Cast | CastKind::DoubleColon => false,
                    CastKind::TryCast | CastKind::SafeCast => true,
                };
                Expr::Cast { expr: self.boxed(expr, d)?, to: self.data_type(e, data_type)?, try_cast }
            }
            sql::Expr::IsNull(x) => Expr::IsNull { expr: self.boxed(x, d)?, negated: false },
            sql::Expr::IsNotNull(x) => Expr::IsNull { expr: self.boxed(x, d)?, negated: true },
            sql::Expr::InList { expr, list, negated } => {
                Expr::InList { expr: self.boxed(expr, d)?, list: self.list(list, d)?, negated: *negated }
            }
            sql::Expr::Between { expr, negated, low, high } => Expr::Between {
                expr: self.boxed(expr, d)?,
                low: self.boxed(low, d)?,
                high: self.boxed(high, d)?,
                negated: *negated,
            },
            sql::Expr::Like { negated, any, expr, pattern, escape_char }
            | sql::Expr::ILike { negated, any, expr, pattern, escape_char } => {
                if *any || escape_char.is_some() {
                    return Err(self.unsupported(e, "LIKE form").hint(
                        "LIKE has no escape character; use contains(), starts_with() or regexp_like() to match % or _ literally",
                    ));
                }
                Expr::Like {
                    expr: self.boxed(expr, d)?,
                    pattern: self.boxed(pattern, d)?,
                    negated: *negated,
                    case_insensitive: matches!(e, sql::Expr::ILike { .. }),
                }
            }
            sql::Expr::Function(f) => self.function(e, f, d)?,
            sql::Expr::Substring { expr, substring_from, substring_for, .. } => {
                // A missing start is left to the arity check, which explains the usage.
                let mut args = vec![self.expr(expr, d)?];
                if let Some(from) = substring_from {
                    args.push(self.expr(from, d)?);
                }
                if let Some(len) = substring_for {
                    args.push(self.expr(len, d)?);
                }
                Expr::Function { name: Func::Substr, args }
            }
            sql::Expr::Trim { trim_where, trim_what: None, expr, trim_characters: None } => {
                let name = match trim_where {
                    None | Some(TrimWhereField::Both) => Func::Trim,
                    Some(TrimWhereField::Leading) => Func::Ltrim,
                    Some(TrimWhereField::Trailing) => Func::Rtrim,
                };
                Expr::Function { name, args: vec![self.expr(expr, d)?] }
            }
            sql::Expr::Trim { .. } => {
                return Err(self
                    .unsupported(e, "TRIM of specific characters")
                    .hint("use regexp_replace(s, '^x+|x+$', '') to strip characters other than whitespace"))
            }
            sql::Expr::Ceil { expr, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => {
                Expr::Function { name: Func::Ceil, args: vec![self.expr(expr, d)?] }
            }
            sql::Expr::Floor { expr, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => {
                Expr::Function { name: Func::Floor, args: vec![self.expr(expr, d)?] }
            }
            sql::Expr::Extract { field, expr, .. } => {
                let name = match field {
                    DateTimeField::Year => Func::Year,
                    DateTimeField::Month => Func::Month,
                    DateTimeField::Day => Func::Day,
                    _ => {
                        return Err(self.unsupported(e, "EXTRACT field").hint("EXTRACT supports YEAR, MONTH and DAY"))
                    }
                };
                Expr::Function { name, args: vec![self.expr(expr, d)?] }
            }
            sql::Expr::IsTrue(_) | sql::Expr::IsNotTrue(_) | sql::Expr::IsFalse(_) | sql::Expr::IsNotFalse(_) => {
                return Err(self
                    .unsupported(e, "IS [NOT] TRUE/FALSE")
                    .hint("write `x = TRUE`, `NOT x`, or coalesce(x, FALSE) to treat NULL as false"))
            }
            sql::Expr::Subquery(_) | sql::Expr::InSubquery { .. } | sql::Expr::Exists { .. } => {
                return Err(self.unsupported(e, "subquery").hint("use a join step to combine datasets"))
            }
            _ => return Err(self.unsupported(e, "syntax")),
        })
    }

    fn value(&self, node: &sql::Expr, v: &Value) -> Result<Literal, ExprError> {
        Ok(match v {
            Value::Number(n, _) => self.number(node, n)?,
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::NationalStringLiteral(s)
            | Value::UnicodeStringLiteral(s) => Literal::String(s.clone()),
            Value::DollarQuotedString(s) => Literal::String(s.value.clone()),
            Value::Boolean(b) => Literal::Bool(*b),
            Value::Null => Literal::Null,
            Value::Placeholder(p) => {
                let mut err = self.err_at(node, format!("unexpected `{p}`"));
                if p.starts_with('$') || self.src.contains("${") {
                    err = err.hint("`${name}` must name a pipeline parameter; undefined parameters are left in the text");
                }
                return Err(err);
            }
            _ => return Err(self.unsupported(node, "literal")),
        })
    }

    fn number(&self, node: &sql::Expr, n: &str) -> Result<Literal, ExprError> {
        if n.contains(['.', 'e', 'E']) {
            return n
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Literal::Float)
                .ok_or_else(|| self.err_at(node, format!("invalid number `{n}`")));
        }
        n.parse::<i64>().map(Literal::Int).map_err(|_| {
            self.err_at(node, format!("integer `{n}` does not fit in int64"))
                .hint(format!("write it as a decimal ({n}.0) to get a float64"))
        })
    }

    fn data_type(&self, node: &sql::Expr, t: &sql::DataType) -> Result<DataType, ExprError> {
        let text = t.to_string();
        // VARCHAR(20), DECIMAL(10, 2): the size does not matter to us.
        let base = text
            .split('(')
            .next()
            .unwrap_or(&text)
            .trim()
            .to_ascii_lowercase();
        let mapped =
            DataType::parse(&base).or(match base.as_str() {
                "double precision" | "real" | "numeric" | "float4" | "float8" | "float32"
                | "dec" => Some(DataType::Float64),
                "smallint" | "tinyint" | "mediumint" | "int2" | "int4" | "int8" | "int16"
                | "int32" => Some(DataType::Int64),
                "char" | "character" | "character varying" | "nvarchar" | "nchar" => {
                    Some(DataType::String)
                }
                _ => None,
            });
        match mapped {
            Some(DataType::List(_)) | None => Err(self
                .err_at(node, format!("unknown type `{text}` in cast"))
                .maybe_hint(suggest::hint(&base, DataType::NAMES.iter().copied()))
                .hint("types are bool, int64, float64, string, date, datetime")),
            Some(t) => Ok(t),
        }
    }

    fn function(&self, node: &sql::Expr, f: &sql::Function, d: usize) -> Result<Expr, ExprError> {
        let ident = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(i)] => i,
            _ => return Err(self.unsupported(node, "qualified function name")),
        };
        let lname = ident.value.to_ascii_lowercase();
        if WALL_CLOCK.contains(&lname.as_str()) {
            return Err(self
                .err_at(node, format!("`{}` reads the clock; transformations must not depend on when they run", ident.value))
                .hint("pass the date as a pipeline parameter instead: DATE '${as_of}' (as_of is set per run)"));
        }
        let list = match &f.args {
            // A bare keyword-like word such as `user`: treat it as the column it looks like.
            FunctionArguments::None if f.name.0.len() == 1 => {
                return Ok(Expr::Column(ident.value.clone()))
            }
            FunctionArguments::List(l) => l,
            _ => return Err(self.unsupported(node, "function call")),
        };
        if list.duplicate_treatment.is_some()
            || !list.clauses.is_empty()
            || f.filter.is_some()
            || f.over.is_some()
            || f.null_treatment.is_some()
            || !f.within_group.is_empty()
            || !matches!(f.parameters, FunctionArguments::None)
        {
            let mut err = self.unsupported(node, "function call form");
            if AGGREGATES.contains(&lname.as_str()) || f.over.is_some() {
                err = err.hint("aggregations and window functions belong in an aggregate step");
            }
            return Err(err);
        }
        let mut args = Vec::with_capacity(list.args.len());
        for a in &list.args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => args.push(self.expr(x, d)?),
                FunctionArg::Unnamed(_) => {
                    let mut err = self.err_at(
                        node,
                        format!("`*` is not a valid argument of `{}`", ident.value),
                    );
                    if lname == "count" {
                        err = err.hint("counting rows belongs in an aggregate step");
                    }
                    return Err(err);
                }
                _ => {
                    return Err(self.err_at(
                        node,
                        format!("named arguments are not supported (in `{}`)", ident.value),
                    ))
                }
            }
        }
        if let Some(name) = Func::from_name(&lname) {
            return Ok(Expr::Function { name, args });
        }
        let mut err = self.err_at(node, format!("unknown function `{}`", ident.value));
        if AGGREGATES.contains(&lname.as_str()) {
            err = ExprError::new(format!(
                "`{}` is an aggregate function; a row expression cannot aggregate",
                ident.value
            ))
            .hint("aggregations belong in an aggregate step");
            if matches!(lname.as_str(), "min" | "max") && args.len() > 1 {
                let alt = if lname == "min" { "least" } else { "greatest" };
                err = err.hint(format!(
                    "for the {lname} of several values in one row use {alt}(a, b, ...)"
                ));
            }
            return Err(err);
        }
        if let Some(alt) = synonym(&lname) {
            err = err.hint(format!("use {alt}"));
        } else {
            err = err.maybe_hint(suggest::hint(&lname, Func::ALL.iter().map(|f| f.name())));
        }
        Err(err.hint("see docs/expressions.md for the function list"))
    }
}

/// Names from other SQL dialects and their equivalent here.
fn synonym(name: &str) -> Option<&'static str> {
    Some(match name {
        "ifnull" | "nvl" | "isnull" => "coalesce(a, b)",
        "iif" => "if(condition, then, else)",
        "len" | "char_length" | "character_length" => "length(s)",
        "datediff" | "date_diff" => "date_diff_days(end, start)",
        "date_add" | "dateadd" | "date_sub" => "date_add_days(d, n)",
        "strftime" | "date_format" | "to_char" => "format_date(d, format)",
        "strptime" | "str_to_date" | "parse_date" => "to_date(s, format)",
        "regexp_matches" | "rlike" | "regexp" | "regexp_contains" => "regexp_like(s, pattern)",
        "ucase" => "upper(s)",
        "lcase" => "lower(s)",
        "ceiling" => "ceil(x)",
        "concat_ws" => "concat(a, ', ', b) or a || ', ' || b",
        "left" => "substr(s, 1, n)",
        "right" => "substr(s, -n)",
        "instr" | "strpos" | "position" => "contains(s, needle)",
        "startswith" => "starts_with(s, prefix)",
        "endswith" => "ends_with(s, suffix)",
        _ => return None,
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
