// progress.h: a status line for a long loop, redrawn in place on a terminal.
//
// On a terminal (isatty) the line is rewritten with '\r' and "clear to end of line", a few times a
// second, cut to the terminal's width so it never wraps. When the output goes to a file or a pipe a
// '\r' would only make a mess, so a plain line is printed every few seconds instead.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace examples {

class ProgressLine {
 public:
  explicit ProgressLine(std::FILE* out = stdout, double redraw_seconds = 0.1, double plain_seconds = 5);

  // Shows `text` unless the last update was less than the interval ago.
  void update(const std::string& text);
  // Prints a line of its own above the status line (which comes back with the next update).
  void message(const std::string& text);
  // Shows `text` as the final state of the line and ends it with a newline.
  void done(const std::string& text);

  bool is_terminal() const { return terminal_; }

 private:
  void draw(const std::string& text);

  std::FILE* out_;
  bool terminal_;
  bool line_open_ = false;  // a status line is on screen without its newline
  double interval_;
  std::chrono::steady_clock::time_point last_;
  bool shown_any_ = false;
};

// "0:42", "12:05", "1:02:03"
std::string format_duration(double seconds);

}  // namespace examples
