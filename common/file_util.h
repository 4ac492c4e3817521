// common/file_util.h: whole-file reads and durable whole-file writes.
//
// ReadFile never throws: a missing, unreadable or oversized file is an IoError naming the path
// and the OS reason. WriteFileAtomically writes a temp file beside the target, fsyncs it, renames
// it over the target and fsyncs the directory, so a crash leaves either the old or the new file.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace hpo {

// Reads the whole file. Fails for files larger than max_bytes (default 64 MiB).
Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes = 64u << 20);

// kDurable: on disk when the call returns (fsync of the file and of its directory).
// kAtomicOnly: readers see the old or the whole new content, but a machine crash may lose the
// write; for files that are rewritten anyway after a crash (a trial attempt's configuration),
// where an fsync would only add latency.
enum class Durability { kDurable, kAtomicOnly };

// Replaces path's content with data atomically (temp file + rename), and durably unless told.
Status WriteFileAtomically(const std::string& path, const std::string& data,
                           Durability durability = Durability::kDurable);

}  // namespace hpo
