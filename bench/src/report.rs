//! The figures a benchmark reports, each with its target and conditions,
//! and the markdown table `all` prints.

/// One reported figure.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub conditions: String,
    /// `None` for a figure without a target of its own.
    pub pass: Option<bool>,
}

impl Row {
    pub fn new(figure: &str, value: String, target: &str, conditions: &str, pass: Option<bool>) -> Row {
        Row { figure: figure.into(), value, target: target.into(), conditions: conditions.into(), pass }
    }

    fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "-",
        }
    }

    /// `figure: value (target …) PASS`, for a benchmark's own output.
    pub fn line(&self) -> String {
        if self.pass.is_some() {
            format!("{}: {} (target {}) {}", self.figure, self.value, self.target, self.verdict())
        } else {
            format!("{}: {}", self.figure, self.value)
        }
    }
}

/// Prints the rows as one markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| figure | value | target | conditions | result |\n|---|---|---|---|---|\n");
    for r in rows {
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&r.figure),
            cell(&r.value),
            cell(&r.target),
            cell(&r.conditions),
            r.verdict()
        ));
    }
    out
}

/// Prints a benchmark's verdict lines and returns whether all targets passed.
pub fn print(rows: &[Row]) -> bool {
    for r in rows.iter().filter(|r| r.pass.is_some()) {
        println!("{}", r.line());
    }
    rows.iter().all(|r| r.pass != Some(false))
}
