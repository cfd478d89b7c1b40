//! SQL text and its bound values, built piece by piece, for statements whose shape depends
//! on the data (multi-row inserts) and for several statements sent as one query.

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Encode, Type};

use crate::sql::Dialect;
use crate::{StoreError, StoreResult};

/// A statement built piece by piece, its placeholders numbered as values are bound.
pub(crate) struct Statement {
    sql: String,
    args: AnyArguments,
    error: Option<sqlx::error::BoxDynError>,
    /// `?` rather than `$n`. SQLite finds a numbered parameter's number by a linear search
    /// (`sqlite3_bind_parameter_name`), which sqlx does for every parameter: quadratic, and
    /// most of the time of an audit batch's thousands of parameters. PostgreSQL reads only
    /// `$n`.
    positional: bool,
}

impl Statement {
    pub(crate) fn new(sql: &str) -> Self {
        Statement {
            sql: sql.to_owned(),
            args: AnyArguments::default(),
            error: None,
            positional: false,
        }
    }

    /// A statement with the placeholders `dialect` binds fastest.
    pub(crate) fn for_dialect(dialect: Dialect, sql: &str) -> Self {
        Statement {
            positional: dialect == Dialect::Sqlite,
            ..Statement::new(sql)
        }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub(crate) fn bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e);
        }
        if self.positional {
            self.sql.push('?');
        } else {
            self.sql.push('$');
            self.sql.push_str(&self.args.len().to_string());
        }
        self
    }

    /// Appends another statement. Only positional statements are joined (SQLite's
    /// multi-statement queries); a numbered one would need renumbering, and is refused.
    pub(crate) fn append(&mut self, other: Statement) {
        if let Some(e) = other.error {
            self.error.get_or_insert(e);
        }
        if !(self.positional && other.positional) {
            self.error
                .get_or_insert_with(|| "only positional statements are joined".into());
            return;
        }
        self.sql.push_str(&other.sql);
        self.args.values.0.extend(other.args.values.0);
    }

    /// Appends a copy of a statement with positional placeholders (which need no
    /// renumbering); None if either has numbered ones or failed to bind a value.
    pub(crate) fn append_copy(&mut self, other: &Statement) -> Option<()> {
        if !(self.positional && other.positional) || other.error.is_some() {
            return None;
        }
        self.sql.push_str(&other.sql);
        self.args
            .values
            .0
            .extend(other.args.values.0.iter().cloned());
        Some(())
    }

    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Binds comma-separated values (no parentheses).
    pub(crate) fn push_values(&mut self, bind: impl FnOnce(&mut Tuple<'_>)) {
        bind(&mut Tuple {
            statement: self,
            first: true,
        });
    }

    /// `(v1, v2, ...), (...)` with one tuple per item.
    pub(crate) fn push_tuples<T>(&mut self, items: &[T], mut bind: impl FnMut(&mut Tuple<'_>, &T)) {
        for (i, item) in items.iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            bind(
                &mut Tuple {
                    statement: self,
                    first: true,
                },
                item,
            );
            self.push(")");
        }
    }

    pub(crate) fn build(self) -> StoreResult<sqlx::query::Query<'static, Any, AnyArguments>> {
        match self.error {
            Some(e) => Err(StoreError::Backend(format!(
                "a value could not be bound: {e}"
            ))),
            None => Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args)),
        }
    }
}

/// The values of one tuple, separated by commas.
pub(crate) struct Tuple<'a> {
    statement: &'a mut Statement,
    first: bool,
}

impl Tuple<'_> {
    pub(crate) fn bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.statement.push(", ");
        }
        self.statement.bind(value);
        self
    }
}
