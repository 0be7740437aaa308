#pragma once

namespace pgfanout {

// What every pgfanout command does first, since it holds every tenant's rows and the
// secrets to reach their databases:
// - umask 077: the state dir, the event log's files and the sinks' files are the daemon's
//   user's only (0700 directories, 0600 files);
// - no core dumps (PR_SET_DUMPABLE 0): a crash leaves no image of its memory (rows,
//   passwords) on disk, and other processes of the same user cannot ptrace it; unless
//   `allow_core_dumps` (--allow-core-dumps, to debug a crash).
void HardenProcess(bool allow_core_dumps);

}  // namespace pgfanout
