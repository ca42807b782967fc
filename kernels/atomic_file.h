// The one way every layer writes a file: never half-written, never mixed with another writer's bytes.
// The content goes to a temporary file of a unique name next to `path` ("<path>.tmp.<pid>.<n>", created
// with O_EXCL), is fsync'ed, renamed over `path`, and the folder is fsync'ed so the rename survives a
// crash. On any failure (including an exception thrown by the caller's fill function) the temporary file
// is removed and an existing `path` is left as it was; the error (pneumo::Error) names `path`, the step
// that failed and the system's reason. Two writers of one path never collide: the last rename wins and
// the file is always one writer's complete content.
#pragma once
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace pneumo {

// Writes `bytes` as the whole content of `path`.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Streaming variant: `fill` writes the content to the stream (text or binary: no newline translation).
// A write error is reported after `fill` returns; an exception from `fill` propagates after clean-up.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& fill);

}  // namespace pneumo
