// Error values of the policy library. policy/ never logs and never lets an exception escape:
// every fallible function returns an Expected<T> (a value or an Error with a human message),
// and the caller (daemon or blocksnapctl) decides how to report it.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace blocksnap::policy {

// A failure: a one-line message meant for a human ("unknown time zone 'Mars/Base'").
struct Error {
  std::string message;
};

// Either a T or an Error. Cheap to move; value() on an error is a programming mistake.
template <typename T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}      // NOLINT: implicit on purpose
  Expected(Error error) : v_(std::move(error)) {}  // NOLINT: implicit on purpose

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(!ok());
    return std::get<Error>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> v_;
};

inline Error MakeError(std::string message) {
  return Error{std::move(message)};
}

}  // namespace blocksnap::policy
