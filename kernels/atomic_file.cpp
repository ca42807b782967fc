// Atomic file writing (see atomic_file.h): POSIX open(O_EXCL) / write / fsync / rename / fsync(folder).
#include "kernels/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <streambuf>

#include "kernels/check.h"

namespace pneumo {
namespace {

#define ATOMIC_FAIL(path, ...) PNEUMO_FAIL("cannot write '", path, "': ", __VA_ARGS__)

// An unbuffered-by-libc stream buffer over a file descriptor, with its own 64 KiB buffer; the first
// write error is kept (errno) and turns the stream bad.
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd) { setp(buf_, buf_ + sizeof(buf_)); }
  int error() const { return error_; }
  bool flush_all() { return drain() && error_ == 0; }

 protected:
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= static_cast<std::streamsize>(sizeof(buf_))) {  // large blocks go straight to the file
      if (!drain() || !write_all(s, static_cast<size_t>(n))) return 0;
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  bool drain() {
    const size_t n = static_cast<size_t>(pptr() - pbase());
    setp(buf_, buf_ + sizeof(buf_));
    return n == 0 || write_all(buf_, n);
  }
  bool write_all(const char* p, size_t n) {
    if (error_) return false;
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        error_ = w < 0 ? errno : EIO;
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  int fd_;
  int error_ = 0;
  char buf_[65536];
};

std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Creates a temporary file next to `path` with a name no other writer uses: pid + a process-wide counter,
// and O_EXCL so a stale file left by a crashed process of the same pid is skipped, never reused.
int create_temporary(const std::string& path, std::string* tmp) {
  static std::atomic<unsigned long> counter{0};
  for (int attempt = 0; attempt < 1000; ++attempt) {
    *tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    const int fd = ::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST && errno != EINTR)
      ATOMIC_FAIL(path, "cannot create the temporary file '", *tmp, "' (", std::strerror(errno), ")");
  }
  ATOMIC_FAIL(path, "no free temporary file name (last tried '", *tmp, "')");
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& fill) {
  PNEUMO_CHECK(!path.empty(), "write_file_atomic: empty path");
  std::string tmp;
  const int fd = create_temporary(path, &tmp);
  auto discard = [&] {
    ::close(fd);
    ::unlink(tmp.c_str());
  };
  try {
    FdBuf buf(fd);
    std::ostream out(&buf);
    fill(out);
    out.flush();
    if (!buf.flush_all() || !out)
      ATOMIC_FAIL(path, "write to '", tmp, "' failed (", std::strerror(buf.error() ? buf.error() : EIO), ")");
    if (::fsync(fd) != 0) ATOMIC_FAIL(path, "fsync of '", tmp, "' failed (", std::strerror(errno), ")");
  } catch (...) {
    discard();
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ATOMIC_FAIL(path, "close of '", tmp, "' failed (", std::strerror(err), ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ATOMIC_FAIL(path, "cannot rename '", tmp, "' into place (", std::strerror(err), ")");
  }
  // The rename is durable once the folder's entry is on disk.
  const int dir = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    const int rc = ::fsync(dir);
    const int err = errno;
    ::close(dir);
    // Some file systems cannot fsync a folder (EINVAL); the file itself is complete and in place.
    if (rc != 0 && err != EINVAL && err != EROFS)
      ATOMIC_FAIL(path, "fsync of its folder failed (", std::strerror(err), ")");
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

}  // namespace pneumo
