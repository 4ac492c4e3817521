// cli/run_control.h: how commands in other terminals reach a running `hpo run`.
//
// `hpo run` keeps its coordinator in its own process. So that `hpo stop NAME --state-dir DIR`
// and `hpo stop --training-job TJ --state-dir DIR` work while it runs (a runaway training job, a
// run left in the background), every `hpo run` serves its HTTP API on loopback and writes
// DIR/control.json (mode 0600: only who may read the state directory's secrets may act on it):
//
//   {"url": "http://127.0.0.1:PORT", "pid": 1234, "access_key_id": "...", "secret_access_key": "..."}
//
// Without --dashboard the API listens on a port of the kernel's choosing and takes only requests
// signed (AWS Signature V4) with the run's own key pair, made afresh for each run and found only
// in that file. With --dashboard PORT it is the dashboard's unsigned loopback API (a browser
// cannot sign), and the file carries no keys. The run removes the file when it ends; one left by
// a killed run names a pid that is gone, and readers say so.
#pragma once

#include <string>

#include "common/status.h"

namespace hpo::cli {

struct RunControl {
  std::string url;                // http://127.0.0.1:PORT
  long pid = 0;                   // the hpo run process
  std::string access_key_id;      // empty: the API takes unsigned requests (--dashboard)
  std::string secret_access_key;  // with access_key_id
};

// DIR/control.json.
std::string RunControlPath(const std::string& state_dir);

// A fresh key pair for this run: an id "HPORUN" + 14 hex digits, a secret of 40 hex digits, from
// the kernel's random source. IoError when it cannot be read.
Result<RunControl> NewRunKeys();

// Writes DIR/control.json atomically, mode 0600. IoError naming the file.
Status WriteRunControl(const std::string& state_dir, const RunControl& control);

// Removes DIR/control.json; best effort.
void RemoveRunControl(const std::string& state_dir);

// The running `hpo run` of DIR. FailedPrecondition, saying what to do, when DIR holds no
// control.json (no hpo run serves it: it has ended, or it is a coordinator's directory) or the
// pid in it is gone (the run was killed); InvalidArgument when the file is malformed.
Result<RunControl> ReadRunControl(const std::string& state_dir);

}  // namespace hpo::cli
