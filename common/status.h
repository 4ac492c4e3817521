// common/status.h: errors as values.
//
// Status carries success or a failure with a code and a human-readable message; Result<T>
// carries a T or a failing Status. Every fallible operation in hpo returns one of them, marked
// [[nodiscard]]. Third-party exceptions are caught at module edges and turned into these.
//
// HPO_CHECK(cond) is for broken internal invariants, never for bad input: it is always on (also
// in release builds), prints the condition and location, and aborts.
//
// Thread safety: values; copying and moving are safe, sharing one instance across threads for
// mutation is not.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace hpo {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // the caller's input is wrong (spec, flag, message); nothing was changed
  kNotFound,          // a named thing does not exist
  kAlreadyExists,     // a thing with that name exists already
  kFailedPrecondition,// the system is not in a state that allows the operation
  kResourceExhausted, // a configured limit or quota would be exceeded
  kUnavailable,       // a peer or resource cannot be reached now; retrying may help
  kIoError,           // a file or device operation failed
  kCorruption,        // stored data failed its integrity check
  kInternal,          // a bug or an unexpected failure of a dependency
};

// Short stable name of a code ("InvalidArgument", ...), for logs and error bodies.
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: <message>", or "OK".
  std::string ToString() const;

  bool operator==(const Status&) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T>: a value or a non-OK Status. Accessing value() of a failed Result aborts.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) {
      std::fprintf(stderr, "hpo: Result constructed from an OK Status\n");
      std::abort();
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { Check(); return std::get<T>(v_); }
  const T& value() const& { Check(); return std::get<T>(v_); }
  // Of a temporary: the value itself (moved out), not a reference into the temporary, so that
  // `for (const auto& e : *store->LoadEvents(...))` iterates a value that lives through the loop
  // (a reference into the Result died before the first iteration: AddressSanitizer found it).
  T value() && { Check(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }

 private:
  void Check() const {
    if (!ok()) {
      std::fprintf(stderr, "hpo: value() of a failed Result: %s\n", std::get<Status>(v_).ToString().c_str());
      std::abort();
    }
  }
  std::variant<T, Status> v_;
};

[[noreturn]] void CheckFailed(const char* cond, const char* file, int line, const std::string& msg);

}  // namespace hpo

// Always-on invariant check (never compiled out). Optional message via HPO_CHECK_MSG.
#define HPO_CHECK(cond) \
  do { if (!(cond)) ::hpo::CheckFailed(#cond, __FILE__, __LINE__, ""); } while (0)
#define HPO_CHECK_MSG(cond, msg) \
  do { if (!(cond)) ::hpo::CheckFailed(#cond, __FILE__, __LINE__, (msg)); } while (0)

// Propagate a failing Status from an expression returning Status.
#define HPO_RETURN_IF_ERROR(expr) \
  do { ::hpo::Status hpo_status_ = (expr); if (!hpo_status_.ok()) return hpo_status_; } while (0)
