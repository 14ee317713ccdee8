// progress.h: a status line for a long loop, redrawn in place on a terminal.
//
// On a terminal (isatty) the line is rewritten with '\r' and "clear to end of line", a few times a
// second, cut to the terminal's width so it never wraps. When the output goes to a file or a pipe (a CI
// log, `| tee`) a '\r' would only make a mess, so a plain line is printed at every tenth of the work
// instead (about ten lines a loop, however slow the machine), or every 30 s where the loop's length is
// not known.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace examples {

class ProgressLine {
 public:
  explicit ProgressLine(std::FILE* out = stdout, double redraw_seconds = 0.1, double plain_seconds = 30);

  // Shows `text`. On a terminal: unless the last redraw was less than redraw_seconds ago. Elsewhere: when
  // `fraction` (the part of the work done, 0 to 1) has passed the next tenth since the last line, or, with
  // no fraction (negative), when the last line is plain_seconds old.
  void update(const std::string& text, double fraction = -1);
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
  int tenths_shown_ = -1;  // plain lines: the last tenth of the work printed
  std::string last_text_;
  std::chrono::steady_clock::time_point last_;
  bool shown_any_ = false;
};

// "0:42", "12:05", "1:02:03"
std::string format_duration(double seconds);

}  // namespace examples
