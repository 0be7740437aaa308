#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pgfanout::wal2json {

// What wal2json's type text says about a column that pgoutput would have said in numbers.

// The type modifier (atttypmod) that format_type(oid, typmod) printed into `type_text`, for
// the built-in types that print one: character, character varying, numeric, time, timetz,
// timestamp, timestamptz, interval, bit, bit varying and arrays of them. -1 when the text
// carries no modifier; nullopt when it shows one we cannot read back (an extension type's
// typmodout, or a text that does not fit the type).
std::optional<int32_t> TypmodFromTypeText(std::string_view type_text, uint32_t type_oid);

// False for the fixed-length built-in types, whose values never live out of line: such a
// column missing from an UPDATE was dropped, not left unchanged. True for every other type
// (varlena, or a type we do not know).
bool MayBeToasted(uint32_t type_oid);

}  // namespace pgfanout::wal2json
