// progress.cpp: '\r' redraws on a terminal, throttled plain lines elsewhere (see progress.h).
#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace examples {

namespace {

std::size_t terminal_width(std::FILE* out) {
  winsize size{};
  if (ioctl(fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace

ProgressLine::ProgressLine(std::FILE* out, double redraw_seconds, double plain_seconds)
    : out_(out), terminal_(isatty(fileno(out)) != 0), interval_(terminal_ ? redraw_seconds : plain_seconds) {}

void ProgressLine::draw(const std::string& text) {
  if (terminal_) {
    // The last column stays empty: writing into it makes some terminals wrap.
    const std::string shown = text.substr(0, terminal_width(out_) - 1);
    std::fprintf(out_, "\r%s\033[K", shown.c_str());
    line_open_ = true;
  } else {
    std::fprintf(out_, "%s\n", text.c_str());
  }
  std::fflush(out_);
  last_text_ = text;
  last_ = std::chrono::steady_clock::now();
  shown_any_ = true;
}

void ProgressLine::update(const std::string& text, double fraction) {
  if (!terminal_ && fraction >= 0) {
    const int tenths = static_cast<int>(std::floor(std::min(fraction, 1.0) * 10));
    if (shown_any_ && tenths <= tenths_shown_) return;
    tenths_shown_ = tenths;
    draw(text);
    return;
  }
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count();
  if (!shown_any_ || since >= interval_) draw(text);
}

void ProgressLine::message(const std::string& text) {
  if (line_open_) std::fprintf(out_, "\r\033[K");
  line_open_ = false;
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

void ProgressLine::done(const std::string& text) {
  if (terminal_ || text != last_text_) draw(text);  // a plain line already showing `text` is not repeated
  if (line_open_) std::fprintf(out_, "\n");
  line_open_ = false;
  shown_any_ = false;
  tenths_shown_ = -1;
  std::fflush(out_);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long total = std::lround(seconds);
  char buffer[32];
  if (total >= 3600)
    std::snprintf(buffer, sizeof buffer, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%ld:%02ld", total / 60, total % 60);
  return buffer;
}

}  // namespace examples
