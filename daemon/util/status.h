// Status and Result<T>: the control-plane error convention of blocksnapd.
//
// The I/O path returns -errno (as io_uring's cqe->res does). Everything above it (volume
// manager, store, bus handlers, config) returns a Status or a Result<T> carrying a code and
// a human message. rocksdb::Status and errno are converted to Status once, at the edge of
// the module that calls them (see FromErrno and store/db.cc).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace blocksnap {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong (bad name, size, tag, ...)
  kNotFound,         // no such volume / snapshot / policy
  kAlreadyExists,    // a unique name is taken
  kBusy,             // refused because of the current state (clients attached, pending, ...)
  kLocked,           // refused because the snapshot is locked (unlock it first)
  kPermissionDenied,
  kNoSpace,
  kCorruption,  // stored data failed verification
  kIOError,
  kInternal,
};

// A cheap value: OK, or a code with a message meant for a human ("volume 'db' not found").
class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefix the message with context: "opening db: <message>".
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(code_, context + ": " + message_);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status AlreadyExists(std::string m) {
  return {Code::kAlreadyExists, std::move(m)};
}
inline Status Busy(std::string m) {
  return {Code::kBusy, std::move(m)};
}
inline Status Locked(std::string m) {
  return {Code::kLocked, std::move(m)};
}
inline Status PermissionDenied(std::string m) {
  return {Code::kPermissionDenied, std::move(m)};
}
inline Status Corruption(std::string m) {
  return {Code::kCorruption, std::move(m)};
}
inline Status IOError(std::string m) {
  return {Code::kIOError, std::move(m)};
}
inline Status Internal(std::string m) {
  return {Code::kInternal, std::move(m)};
}

// errno -> Status, with "what" naming the failed operation ("creating volumes/x.img").
Status FromErrno(int err, const std::string& what);

// A value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace blocksnap

// Propagate a non-OK Status from an expression returning Status.
#define BS_RETURN_IF_ERROR(expr)         \
  do {                                   \
    ::blocksnap::Status bs_st_ = (expr); \
    if (!bs_st_.ok()) return bs_st_;     \
  } while (0)

#define BS_CONCAT_INNER_(a, b) a##b
#define BS_CONCAT_(a, b) BS_CONCAT_INNER_(a, b)
// Assign the value of a Result<T> expression to lhs, or return its Status.
#define BS_ASSIGN_OR_RETURN(lhs, expr) \
  BS_ASSIGN_OR_RETURN_IMPL_(BS_CONCAT_(bs_res_, __LINE__), lhs, expr)
#define BS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
