// Status and Result: errors are values in replite. No exception crosses the
// library boundary. Codes are chosen so that a retry policy follows from the
// code alone: kUnavailable / kTimeout / kIOError may be retried, the others
// mean "fix the input or the configuration first".
//
// Thread-safety: value types; distinct objects may be used from any thread.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "replite/export.h"

namespace replite {

enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,    // bad option, malformed URL, bad path
  kNotFound = 2,           // database, object, generation or txid missing
  kAlreadyExists = 3,      // restore target exists, database added twice
  kFailedPrecondition = 4, // e.g. database not in WAL mode, conditional PUT lost
  kCorruption = 5,         // checksum mismatch, malformed object or WAL
  kIOError = 6,            // local filesystem error
  kUnavailable = 7,        // store unreachable / 5xx / throttled: retry
  kPermissionDenied = 8,   // store or filesystem refused access
  kUnauthenticated = 9,    // wrong or missing credentials
  kResourceExhausted = 10, // disk full, memory cap, fd budget
  kCancelled = 11,         // shutting down, database removed
  kTimeout = 12,           // deadline passed
  kNotSupported = 13,
  kInternal = 14,
};

REPLITE_EXPORT const char* CodeName(Code c);

class REPLITE_EXPORT Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
  static Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status NotSupported(std::string m) { return {Code::kNotSupported, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "NotFound: object generations/... missing"
  std::string ToString() const;
  // True when retrying the same operation later may succeed.
  bool retryable() const {
    return code_ == Code::kUnavailable || code_ == Code::kTimeout || code_ == Code::kIOError;
  }
  // Returns a copy whose message is prefixed with context ("restore: ").
  Status Annotate(const std::string& context) const {
    return ok() ? *this : Status(code_, context + msg_);
  }

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

// Result<T>: a T or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(implicit); must not be OK
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace replite
