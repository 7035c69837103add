// SPDX-License-Identifier: Apache-2.0
// verify_audit_chain: walks audit files oldest first, checking each record's link to the one
// before; on a break, a second pass finds where the record's link points to say what happened.
#include <cerrno>
#include <fstream>
#include <functional>
#include <optional>
#include <system_error>

#include "audit_json.hpp"
#include "pagi_exec/audit.hpp"
#include "sha256.hpp"

namespace pagi_exec {
namespace {

// Where a line is, for messages: "audit.jsonl:12".
struct Place {
  std::size_t file = 0;
  std::size_t line = 0;
};

// One record as the walk sees it.
struct Seen {
  Place place;
  std::string hash;                  // of its line
  std::optional<std::string> prev;   // its link; nullopt for a record written before the chain
};

std::string where(std::span<const std::filesystem::path> files, Place place) {
  return files[place.file].string() + ":" + std::to_string(place.line);
}

// Calls `visit` for each record of `files` in order; a line that is not a record goes to
// `not_record` (with whether it was the last, unterminated line of its file).
Result<void> walk(std::span<const std::filesystem::path> files, const std::function<bool(const Seen&)>& visit,
                  const std::function<void(Place, bool torn)>& not_record) {
  for (std::size_t f = 0; f < files.size(); ++f) {
    std::error_code ec;
    if (std::filesystem::is_directory(files[f], ec)) {
      return fail(Errc::io, "read audit log " + files[f].string() + ": it is a folder, not a file");
    }
    std::ifstream in(files[f], std::ios::binary);
    if (!in) return fail(Errc::io, "open audit log " + files[f].string() + " for reading", errno);
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
      if (line.empty()) continue;
      const bool complete = !in.eof();
      auto entry = detail::audit_entry_from_line(line);
      if (!entry) {
        not_record({f, n}, !complete);
        continue;
      }
      // A record without the field predates the chain; one with it carries its link.
      const bool linked = entry->raw_json.find("\"prev\":") != std::string::npos;
      if (!visit({{f, n}, detail::sha256_hex(line), linked ? std::optional(entry->prev) : std::nullopt})) return {};
    }
    if (in.bad()) return fail(Errc::io, "read audit log " + files[f].string(), errno);
  }
  return {};
}

// The record whose hash is `hash`, if any of `files` holds one.
Result<std::optional<Place>> find_record(std::span<const std::filesystem::path> files, const std::string& hash) {
  std::optional<Place> found;
  auto walked = walk(
      files,
      [&](const Seen& seen) {
        if (seen.hash == hash) found = seen.place;
        return !found;
      },
      [](Place, bool) {});
  if (!walked) return error_of(walked);
  return found;
}

bool before(Place a, Place b) { return a.file < b.file || (a.file == b.file && a.line < b.line); }

// What a break at `record` means, from where its link points.
Result<std::string> diagnose(std::span<const std::filesystem::path> files, const Seen& record, const Seen& previous) {
  const auto target = find_record(files, *record.prev);
  if (!target) return error_of(target);
  const auto at = where(files, record.place);
  if (!*target) {
    return at + ": the chain breaks here: this record says the one before it hashes to " + record.prev->substr(0, 16) +
           "..., but " + where(files, previous.place) +
           " does not, and no record does: that record was changed, or records between it and this one were removed";
  }
  if (before(**target, previous.place)) {
    return at + ": the chain breaks here: this record follows " + where(files, **target) + ", not " +
           where(files, previous.place) + ": the records between were inserted, moved here or changed";
  }
  return at + ": the chain breaks here: this record follows " + where(files, **target) +
         ", which comes after it: records were reordered";
}

}  // namespace

Result<AuditChainReport> verify_audit_chain(std::span<const std::filesystem::path> files) {
  if (files.empty()) return fail(Errc::invalid_request, "verify the audit chain: no files given");
  AuditChainReport report;
  report.files = files.size();
  std::optional<Seen> previous;
  std::optional<Seen> broken;  // the first record that does not follow the one before it
  std::optional<Place> first_linked;
  std::size_t unlinked = 0;
  auto walked = walk(
      files,
      [&](const Seen& seen) {
        ++report.records;
        if (!seen.prev) {
          if (first_linked) {  // the chain cannot stop: a record without a link after it began was altered
            report.intact = false;
            report.problem = where(files, seen.place) + ": this record has no link (prev) although the chain began at " +
                             where(files, *first_linked) + ": it was changed or inserted";
            return false;
          }
          ++unlinked;
          previous = seen;
          return true;
        }
        if (!first_linked) {
          first_linked = seen.place;
          if (!previous && *seen.prev != detail::chain_origin) {
            report.notes.push_back("the chain starts mid-way at " + where(files, seen.place) +
                                   ": the records before it are not in the files given (rotated away?) and cannot "
                                   "be checked");
          }
        }
        if (previous && *seen.prev != previous->hash) {
          broken = seen;
          return false;
        }
        previous = seen;
        return true;
      },
      [&](Place place, bool torn) {
        report.notes.push_back(where(files, place) + (torn ? ": an unfinished last line (a write cut by a crash)"
                                                           : ": not a record (a write cut by a crash, or not "
                                                             "written by pagi-exec): skipped"));
      });
  if (!walked) return error_of(walked);
  if (previous) report.last_hash = previous->hash;
  if (unlinked > 0) {
    report.notes.push_back(std::to_string(unlinked) + " records written before the chain (no prev): not checked");
  }
  if (broken) {
    report.intact = false;
    auto why = diagnose(files, *broken, *previous);
    if (!why) return error_of(why);
    report.problem = std::move(*why);
  }
  return report;
}

}  // namespace pagi_exec
