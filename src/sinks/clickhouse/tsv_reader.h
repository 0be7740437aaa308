#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/error.h"

namespace pgfanout::clickhouse {

// Rows of a ClickHouse `FORMAT TabSeparated` answer: one line per row, fields split by
// tabs, `\N` for NULL, and backslash escapes (\t \n \\ \' \0 \b \f \r \xHH ...) undone so
// each value is exactly the bytes the server holds.
using TsvRow = std::vector<std::optional<std::string>>;

// Errors: kSink when the text is not TabSeparated (a truncated answer, say).
Result<std::vector<TsvRow>> ParseTsv(std::string_view text);

}  // namespace pgfanout::clickhouse
