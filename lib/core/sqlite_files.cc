#include "core/sqlite_files.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstring>
#include <memory>

namespace replite {
namespace {

Status SqliteIoError(const std::string& what, const std::string& path, int rc) {
  std::string msg = what + " " + path + ": " + sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CANTOPEN: return Status::NotFound(msg);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: return Status::PermissionDenied(msg);
    case SQLITE_FULL: return Status::ResourceExhausted(msg);
    case SQLITE_NOMEM: return Status::ResourceExhausted(msg);
    default: return Status::IOError(msg);
  }
}

Status FilePointer(sqlite3* db, int op, const std::string& path, sqlite3_file** out) {
  *out = nullptr;
  if (db == nullptr) return Status::Internal("no SQLite connection for " + path);
  int rc = sqlite3_file_control(db, "main", op, out);
  if (rc != SQLITE_OK || *out == nullptr || (*out)->pMethods == nullptr) {
    *out = nullptr;
    return Status::Internal("SQLite has no open file handle for " + path);
  }
  return Status::OK();
}

}  // namespace

Status SqliteFileRef::Database(sqlite3* db, const std::string& db_path, SqliteFileRef* out) {
  out->path_ = db_path;
  return FilePointer(db, SQLITE_FCNTL_FILE_POINTER, db_path, &out->f_);
}

Status SqliteFileRef::Wal(sqlite3* db, const std::string& db_path, SqliteFileRef* out) {
  out->path_ = db_path + "-wal";
  // In WAL mode the journal pointer is the WAL's handle once the pager has
  // opened the WAL (first read transaction); before that it is the rollback
  // journal's handle, which is never opened in WAL mode.
  return FilePointer(db, SQLITE_FCNTL_JOURNAL_POINTER, out->path_, &out->f_);
}

Status SqliteFileRef::Size(uint64_t* size) const {
  sqlite3_int64 n = 0;
  int rc = f_->pMethods->xFileSize(f_, &n);
  if (rc != SQLITE_OK) return SqliteIoError("stat", path_, rc);
  *size = n < 0 ? 0 : static_cast<uint64_t>(n);
  return Status::OK();
}

Status SqliteFileRef::Read(void* buf, size_t n, uint64_t offset, size_t* got) const {
  *got = 0;
  if (n == 0) return Status::OK();
  int rc = f_->pMethods->xRead(f_, buf, static_cast<int>(n), static_cast<sqlite3_int64>(offset));
  if (rc == SQLITE_OK) {
    *got = n;
    return Status::OK();
  }
  if (rc != SQLITE_IOERR_SHORT_READ) return SqliteIoError("read", path_, rc);
  // SQLite zero-fills the rest of a short read; how much was real follows
  // from the size.
  uint64_t size = 0;
  Status s = Size(&size);
  if (!s.ok()) return s;
  *got = size <= offset ? 0 : static_cast<size_t>(std::min<uint64_t>(n, size - offset));
  return Status::OK();
}

namespace {

// The head of os_unix.c's unixFile (see WalStat).
struct UnixFileHead {
  const sqlite3_io_methods* methods;
  sqlite3_vfs* vfs;
  void* inode;
  int h;
};

// The descriptor a unix VFS file of `db` would hold, or -1 if `f` is not
// one of its VFS's files.
int UnixDescriptor(sqlite3* db, const sqlite3_file* f) {
  sqlite3_vfs* vfs = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) != SQLITE_OK || vfs == nullptr) return -1;
  if (vfs->zName == nullptr || std::strncmp(vfs->zName, "unix", 4) != 0) return -1;
  const auto* head = reinterpret_cast<const UnixFileHead*>(f);
  if (head->vfs != vfs || head->h < 0) return -1;
  return head->h;
}

}  // namespace

bool WalStat::Prove(sqlite3* db, const std::string& db_path) {
  if (tried_) return proven();
  tried_ = true;
  sqlite3_file* f = nullptr;
  if (!FilePointer(db, SQLITE_FCNTL_JOURNAL_POINTER, "", &f).ok()) return false;
  const int fd = UnixDescriptor(db, f);
  if (fd < 0) return false;
  struct stat by_fd, by_path;
  if (::fstat(fd, &by_fd) != 0 || ::stat((db_path + "-wal").c_str(), &by_path) != 0) return false;
  if (!S_ISREG(by_fd.st_mode) || by_fd.st_dev != by_path.st_dev || by_fd.st_ino != by_path.st_ino) return false;
  file_ = f;
  fd_ = fd;
  return true;
}

bool WalStat::Stat(sqlite3* db, struct stat* st) const {
  if (fd_ < 0 || db == nullptr) return false;
  sqlite3_file* f = nullptr;
  if (!FilePointer(db, SQLITE_FCNTL_JOURNAL_POINTER, "", &f).ok() || f != file_ || UnixDescriptor(db, f) != fd_)
    return false;
  return ::fstat(fd_, st) == 0 && st->st_nlink > 0;
}

bool ReadWalIndexInfo(sqlite3* db, WalIndexInfo* info) {
  sqlite3_file* f = nullptr;
  if (!FilePointer(db, SQLITE_FCNTL_FILE_POINTER, "", &f).ok()) return false;
  if (f->pMethods->iVersion < 2 || f->pMethods->xShmMap == nullptr) return false;
  volatile void* region = nullptr;
  // Region 0 (32 KiB) holds the header; bExtend=0: only an existing mapping.
  if (f->pMethods->xShmMap(f, 0, 32 * 1024, 0, &region) != SQLITE_OK || region == nullptr) return false;
  f->pMethods->xShmBarrier(f);
  unsigned char hdr[kWalIndexHeaderSize];
  std::memcpy(hdr, const_cast<const char*>(static_cast<volatile char*>(region)), sizeof hdr);
  *info = ParseWalIndexHeader(hdr);
  return true;
}

namespace {

// Opens `full` (a name for `vfs`; `path` is what errors name) and reads its
// first 100 bytes. *open_rc: xOpen's result.
Status ReadHeaderAt(sqlite3_vfs* vfs, const std::string& full, const std::string& path, unsigned char header[100],
                    size_t* got, int* open_rc) {
  // A VFS expects a main database's name in the form sqlite3_create_filename
  // makes (URI parameters may follow it).
  sqlite3_filename name = sqlite3_create_filename(full.c_str(), "", "", 0, nullptr);
  if (name == nullptr) return Status::ResourceExhausted("out of memory opening " + path);
  std::unique_ptr<char[]> mem(new char[static_cast<size_t>(vfs->szOsFile)]());
  sqlite3_file* f = reinterpret_cast<sqlite3_file*>(mem.get());
  int out_flags = 0;
  const int rc = vfs->xOpen(vfs, name, f, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READONLY, &out_flags);
  *open_rc = rc;
  Status s;
  if (rc != SQLITE_OK) {
    s = SqliteIoError("database: open", path, rc);
  } else {
    int r = f->pMethods->xRead(f, header, 100, 0);
    if (r == SQLITE_OK) {
      *got = 100;
    } else if (r == SQLITE_IOERR_SHORT_READ) {
      sqlite3_int64 n = 0;
      if (f->pMethods->xFileSize(f, &n) == SQLITE_OK) *got = static_cast<size_t>(std::min<sqlite3_int64>(n, 100));
    } else {
      s = SqliteIoError("database: read", path, r);
    }
  }
  // The unix VFS closes the descriptor only if this process holds no lock
  // on the file; otherwise it keeps it until the last lock is released.
  if (f->pMethods) f->pMethods->xClose(f);
  sqlite3_free_filename(name);
  return s;
}

}  // namespace

Status ReadDatabaseHeader(const std::string& path, unsigned char header[100], size_t* got) {
  *got = 0;
  sqlite3_vfs* vfs = sqlite3_vfs_find(nullptr);
  if (vfs == nullptr) return Status::Internal("SQLite has no default VFS");
  int open_rc = SQLITE_OK;
  // The unix VFSes open an absolute path as given: their xFullPathname
  // lstat()s every component to resolve symlinks, about half of this
  // check's time (10 of 14 system calls for a path 5 deep: 18-25 us -> 10-13
  // us a file on the 2-core VM, the main cost of a cold Add), and their locks
  // are per inode, not per name. They refuse a symlink as the last
  // component (SQLITE_CANTOPEN): that one is resolved, as is every name for
  // another VFS.
  if (!path.empty() && path[0] == '/' && std::strncmp(vfs->zName, "unix", 4) == 0) {
    Status s = ReadHeaderAt(vfs, path, path, header, got, &open_rc);
    if ((open_rc & 0xff) != SQLITE_CANTOPEN) return s;
  }
  std::string full(static_cast<size_t>(vfs->mxPathname) + 1, '\0');
  int rc = vfs->xFullPathname(vfs, path.c_str(), vfs->mxPathname + 1, full.data());
  if (rc != SQLITE_OK && rc != SQLITE_OK_SYMLINK) return SqliteIoError("database: resolve", path, rc);
  full.resize(std::strlen(full.c_str()));
  return ReadHeaderAt(vfs, full, path, header, got, &open_rc);
}

bool DatabaseOfWalName(const char* file_name, std::string* db_name) {
  const size_t n = std::strlen(file_name);
  if (n <= 4 || std::strcmp(file_name + n - 4, "-wal") != 0) return false;
  db_name->assign(file_name, n - 4);
  return true;
}

}  // namespace replite
