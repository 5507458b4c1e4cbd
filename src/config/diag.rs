//! Diagnostics: every problem in the configuration, with its place in the
//! source, rendered by miette. Front-end functions return their results plus a
//! list of diagnostics instead of stopping at the first problem.

use miette::{LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Index of a source file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId(pub u32);

/// A place in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Span {
    pub file: FileId,
    pub range: Range<usize>,
}

impl Span {
    pub fn new(file: FileId, range: Option<Range<usize>>) -> Span {
        Span { file, range: range.unwrap_or(0..0) }
    }
}

/// The text of every loaded configuration file.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<(PathBuf, Snippet)>,
}

impl Sources {
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push((path, Snippet::new(text)));
        FileId(self.files.len() as u32 - 1)
    }
    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }
    /// Adds the files of `range` again (their texts shared), as reading
    /// them again would.
    pub fn repeat(&mut self, range: std::ops::Range<usize>) {
        self.files.extend_from_within(range);
    }
    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id.0 as usize].0
    }
    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0 as usize].1.text
    }
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &Path, &str)> {
        self.files.iter().enumerate().map(|(i, (p, t))| (FileId(i as u32), p.as_path(), t.text.as_str()))
    }
    /// One-based line and column of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let snippet = &self.files[file.0 as usize].1;
        let offset = offset.min(snippet.text.len());
        let line = snippet.line_of(offset);
        let start = snippet.line_starts()[line];
        let col = snippet.text.get(start..offset).map_or(0, |l| l.chars().count()) + 1;
        (line + 1, col)
    }
}

/// A file's text and where its lines start, shared by every diagnostic in
/// it: a report reads only the lines around its span, so rendering many
/// diagnostics of a large file costs what they show, not the file each time.
/// The line starts are found when the first diagnostic needs them: most
/// loads report nothing.
#[derive(Debug, Clone)]
struct Snippet {
    /// The text as read (an `Arc<str>` would copy it).
    text: Arc<String>,
    line_starts: Arc<OnceLock<Box<[usize]>>>,
}

impl Snippet {
    fn new(text: String) -> Snippet {
        Snippet { text: Arc::new(text), line_starts: Arc::default() }
    }

    /// Byte offset of each line's first byte (the first is 0).
    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    /// Zero-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts().partition_point(|&start| start <= offset).saturating_sub(1)
    }
}

impl miette::SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        // miette's own reading scans from the start of the text; start it a
        // few lines above the span instead, and shift what it finds back.
        let first_line = self.line_of(span.offset().min(self.text.len())).saturating_sub(context_lines_before);
        let base = self.line_starts()[first_line];
        let window = &self.text.as_bytes()[base..];
        let local = SourceSpan::from((span.offset().saturating_sub(base), span.len()));
        let found = window.read_span(&local, context_lines_before, context_lines_after)?;
        let span = SourceSpan::from((found.span().offset() + base, found.span().len()));
        Ok(Box::new(miette::MietteSpanContents::new(
            found.data(),
            span,
            found.line() + first_line,
            found.column(),
            found.line_count() + first_line,
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where; `None` for problems that belong to no file (e.g. `-var`).
    pub span: Option<Span>,
    /// What the label under the snippet says.
    pub label: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: Some(span),
            label: label.into(),
            help: None,
        }
    }
    /// A problem with no place in the configuration files.
    pub fn global(message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, message: message.into(), span: None, label: String::new(), help: None }
    }
    pub fn warning(mut self) -> Diagnostic {
        self.severity = Severity::Warning;
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    /// `file:line:col` of the diagnostic, if it has a place.
    pub fn location(&self, sources: &Sources) -> Option<String> {
        let span = self.span.as_ref()?;
        let (line, col) = sources.line_col(span.file, span.range.start);
        Some(format!("{}:{line}:{col}", sources.path(span.file).display()))
    }
    /// A miette report, with the source snippet, for rendering.
    pub fn to_report(&self, sources: &Sources) -> miette::Report {
        let report = Rendered {
            message: match self.location(sources) {
                Some(loc) => format!("{} (at {loc})", self.message),
                None => self.message.clone(),
            },
            severity: self.severity,
            help: self.help.clone(),
            label: self.span.as_ref().map(|s| {
                let len = s.range.end.saturating_sub(s.range.start);
                LabeledSpan::new_with_span(Some(self.label.clone()), SourceSpan::from((s.range.start, len)))
            }),
        };
        match &self.span {
            Some(span) => {
                let src = NamedSource::new(
                    sources.path(span.file).display().to_string(),
                    sources.files[span.file.0 as usize].1.clone(),
                )
                .with_language("hcl");
                miette::Report::new(report).with_source_code(src)
            }
            None => miette::Report::new(report),
        }
    }
}

#[derive(Debug)]
struct Rendered {
    message: String,
    severity: Severity,
    help: Option<String>,
    label: Option<LabeledSpan>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.label.clone().map(|l| Box::new(std::iter::once(l)) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

/// A list of diagnostics, collected rather than returned one at a time.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
    pub fn errors(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
}
