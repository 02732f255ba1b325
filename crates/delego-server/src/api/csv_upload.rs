//! CSV uploads (contact lists, register entries): the header row, then each row with its
//! line number. A row that cannot be read is that row's problem, reported with the rest,
//! never the end of the upload.

use csv::{Position, StringRecord};

use crate::error::{ApiError, ApiResult};

pub(crate) struct CsvUpload<'b> {
    reader: csv::Reader<&'b [u8]>,
    record: StringRecord,
    rows: usize,
    most: usize,
}

/// One row: its cells, or why it cannot be read.
pub(crate) enum Row<'r> {
    Read { line: u64, cells: &'r StringRecord },
    Unreadable { line: u64, message: String },
}

impl<'b> CsvUpload<'b> {
    /// Reads the header of `body`, which may have at most `most` rows after it; cells are
    /// trimmed.
    pub(crate) fn open(body: &'b [u8], most: usize) -> ApiResult<(Self, Vec<String>)> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(body);
        let columns = reader
            .headers()
            .map_err(|e| {
                ApiError::field(
                    "header",
                    "invalid",
                    format!("the header row cannot be read: {e}"),
                )
            })?
            .iter()
            .map(str::to_owned)
            .collect();
        let upload = Self {
            reader,
            record: StringRecord::new(),
            rows: 0,
            most,
        };
        Ok((upload, columns))
    }

    /// How many rows were read so far, readable or not.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The next row, or `None` after the last. More rows than allowed refuse the upload.
    pub(crate) fn next_row(&mut self) -> ApiResult<Option<Row<'_>>> {
        let read = self.reader.read_record(&mut self.record);
        if !matches!(read, Ok(false)) {
            self.rows += 1;
            if self.rows > self.most {
                return Err(ApiError::field(
                    "body",
                    "too_many_rows",
                    format!("import at most {} rows at a time", self.most),
                ));
            }
        }
        match read {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(Row::Read {
                line: self.record.position().map_or(0, Position::line),
                cells: &self.record,
            })),
            Err(error) => {
                let line = error.position().map_or(0, Position::line);
                let message = match error.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("has {len} cells where the header has {expected_len}"),
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
                    _ => return Err(ApiError::field("body", "invalid", error.to_string())),
                };
                Ok(Some(Row::Unreadable { line, message }))
            }
        }
    }
}
