// SftpSessions: a bounded pool of libcurl easy handles, each holding one
// SSH connection with its SFTP session open between uses (libcurl keeps an
// easy handle's connection alive when curl_easy_reset is called). Every
// database replicating to one SFTP server shares the store's pool, so the
// server sees at most `max` SSH connections from this process however many
// databases there are; a caller waits for a free session.
//
// Thread-safety: Acquire and the Lease destructor may be called from any
// thread; one Lease is used by one thread at a time.
#pragma once

#include <condition_variable>
#include <mutex>
#include <vector>

typedef void CURL;

namespace replite::sftp {

class Sessions {
 public:
  explicit Sessions(int max);
  ~Sessions();
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  // An easy handle for the caller's use, returned to the pool (connection
  // kept) when the Lease is destroyed. Options are reset; nullptr only if
  // libcurl cannot allocate one.
  class Lease {
   public:
    Lease(Sessions* pool, CURL* h) : pool_(pool), h_(h) {}
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    CURL* get() const { return h_; }
    // Closes the handle's connection instead of keeping it, when libcurl
    // left state on it that must not be reused; the pool may then open a
    // new one in its place.
    void Discard() { discard_ = true; }

   private:
    Sessions* pool_;
    CURL* h_;
    bool discard_ = false;
  };
  Lease Acquire();

  // Handles open now (at most max): created and not discarded.
  int created() const;

 private:
  void Release(CURL* h, bool discard);
  const int max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<CURL*> idle_;
  int created_ = 0;
};

}  // namespace replite::sftp
