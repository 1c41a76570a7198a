#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clip/util/error.h"

namespace clip {
namespace {

std::string not_regular(mode_t mode, const std::string& what) {
  if (S_ISDIR(mode)) return ": is a directory, not a " + what;
  if (S_ISFIFO(mode)) return ": is a FIFO (named pipe), not a regular file; save the data to a file first";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return ": is a device, not a regular file";
  if (S_ISSOCK(mode)) return ": is a socket, not a regular file";
  return ": is not a regular file";
}

}  // namespace

RegularFile::RegularFile(const std::string& path, const std::string& what) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it has no effect on regular files.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd_ < 0) {
    const int e = errno;
    fail(path, e == ENOENT    ? str(": no such ", what)
               : e == ENOTDIR ? str(": no such ", what, " (a part of the path is not a folder)")
                              : str(": cannot open: ", std::strerror(e)));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    fail(path, ": cannot stat: ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail(path, not_regular(st.st_mode, what));
  }
  // Back to blocking reads (a regular file never blocks, but leave the descriptor as callers expect).
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  size_ = static_cast<uint64_t>(st.st_size);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string read_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  const RegularFile file(path, what);
  const auto too_large = [&](uint64_t size) {
    fail(path, ": ", size, " bytes, more than the ", max_bytes, " this reader takes; is it the right file?");
  };
  if (file.size() > max_bytes) too_large(file.size());
  std::string bytes(static_cast<size_t>(file.size()), '\0');
  size_t used = 0;
  for (;;) {
    if (used == bytes.size()) {
      if (used >= max_bytes) {
        char extra;
        const ssize_t more = ::read(file.fd(), &extra, 1);  // the file grew past the bound while being read?
        if (more > 0) too_large(used + 1);
        break;
      }
      bytes.resize(static_cast<size_t>(std::min<uint64_t>(max_bytes, std::max<uint64_t>(used * 2, 65536))));
    }
    const ssize_t got = ::read(file.fd(), bytes.data() + used, bytes.size() - used);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(path, ": cannot read: ", std::strerror(errno));
    }
    if (got == 0) break;
    used += static_cast<size_t>(got);
  }
  bytes.resize(used);
  return bytes;
}

void require_regular_file(const std::string& path, const std::string& what) { RegularFile check(path, what); }

}  // namespace clip
