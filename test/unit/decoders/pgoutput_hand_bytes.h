#pragma once

// pgoutput messages written out byte by byte from the protocol documentation ("Logical
// Replication Message Formats"), not produced by the builder, so the builder and the
// reader cannot share a mistake unnoticed.

#include <cstdint>

namespace pgfanout::pgoutput {
namespace {

constexpr unsigned char kHandBegin[] = {
    'B',                                             // type
    0x00, 0x00, 0x00, 0x00, 0x01, 0x6B, 0x37, 0x48,  // final LSN
    0x00, 0x02, 0xB0, 0xD5, 0xD4, 0xEB, 0x22, 0x40,  // commit time
    0x00, 0x00, 0x02, 0xE6,                          // xid
};

// Relation 16384 public.users, replica identity default, (id int4 key, name text).
constexpr unsigned char kHandRelation[] = {
    'R',                                                         // type
    0x00, 0x00, 0x40, 0x00,                                      // relation id
    'p',  'u',  'b',  'l',  'i',  'c',  0x00,                    // namespace
    'u',  's',  'e',  'r',  's',  0x00,                          // relation name
    'd',                                                         // replica identity
    0x00, 0x02,                                                  // column count
    0x01, 'i',  'd',  0x00, 0x00, 0x00, 0x00, 0x17,              // key, "id", int4
    0xFF, 0xFF, 0xFF, 0xFF,                                      // typmod -1
    0x00, 'n',  'a',  'm',  'e',  0x00, 0x00, 0x00, 0x00, 0x19,  // "name", text
    0xFF, 0xFF, 0xFF, 0xFF,                                      // typmod -1
};

// Insert into 16384: ('42', 'é', NULL).
constexpr unsigned char kHandInsert[] = {
    'I', 0x00, 0x00, 0x40, 0x00,              // type, relation id
    'N', 0x00, 0x03,                          // new tuple, 3 columns
    't', 0x00, 0x00, 0x00, 0x02, '4',  '2',   // text "42"
    't', 0x00, 0x00, 0x00, 0x02, 0xC3, 0xA9,  // text "é" (UTF-8)
    'n',                                      // NULL
};

// Update of 16384 with old key ('7', NULL), new ('8', unchanged TOAST).
constexpr unsigned char kHandUpdate[] = {
    'U', 0x00, 0x00, 0x40, 0x00,                              // type, relation id
    'K', 0x00, 0x02, 't',  0x00, 0x00, 0x00, 0x01, '7', 'n',  // old key
    'N', 0x00, 0x02, 't',  0x00, 0x00, 0x00, 0x01, '8', 'u',  // new tuple
};

// Delete from 16384 inside a streamed block of xid 1000, old row ('7').
constexpr unsigned char kHandStreamDelete[] = {
    'D',  0x00, 0x00, 0x03, 0xE8,  // type, xid 1000
    0x00, 0x00, 0x40, 0x00,        // relation id
    'O',  0x00, 0x01, 't',  0x00, 0x00, 0x00, 0x01, '7',
};

// Truncate 16384 and 16385 with CASCADE | RESTART IDENTITY.
constexpr unsigned char kHandTruncate[] = {
    'T', 0x00, 0x00, 0x00, 0x02, 0x03, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x40, 0x01,
};

// Message inside a streamed block of xid 1000: xid, flags, lsn, prefix "px", content "hi".
constexpr unsigned char kHandStreamMessage[] = {
    'M',  0x00, 0x00, 0x03, 0xE8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x6B,
    0x37, 0x48, 'p',  'x',  0x00, 0x00, 0x00, 0x00, 0x02, 'h',  'i',
};

// Commit: flags 0, commit LSN 0/16B3748, end LSN 0/16B3778, time as kHandBegin.
constexpr unsigned char kHandCommit[] = {
    'C',  0x00,                                      // type, flags
    0x00, 0x00, 0x00, 0x00, 0x01, 0x6B, 0x37, 0x48,  // commit LSN
    0x00, 0x00, 0x00, 0x00, 0x01, 0x6B, 0x37, 0x78,  // end LSN
    0x00, 0x02, 0xB0, 0xD5, 0xD4, 0xEB, 0x22, 0x40,  // commit time
};

// Stream Start (xid 1000, first segment), Stream Commit, Stream Abort (1000, sub 1001).
constexpr unsigned char kHandStreamStart[] = {'S', 0x00, 0x00, 0x03, 0xE8, 0x01};
constexpr unsigned char kHandStreamCommit[] = {
    'c',  0x00, 0x00, 0x03, 0xE8, 0x00,              // type, xid, flags
    0x00, 0x00, 0x00, 0x00, 0x01, 0x6B, 0x37, 0x48,  // commit LSN
    0x00, 0x00, 0x00, 0x00, 0x01, 0x6B, 0x37, 0x78,  // end LSN
    0x00, 0x02, 0xB0, 0xD5, 0xD4, 0xEB, 0x22, 0x40,  // commit time
};
constexpr unsigned char kHandStreamAbort[] = {'A', 0x00, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x03, 0xE9};

constexpr int64_t kHandTime = 757382400123456;  // 2024-01-01 00:00:00.123456 since 2000

}  // namespace
}  // namespace pgfanout::pgoutput
