#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/tokenizer/tokenizer_regex.h"

#include <pcre2.h>

#include "core/base/error.h"

namespace s3::tok {

namespace {

// Unicode White_Space, as a class body.
constexpr std::string_view kSpaceSet =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
    "\\x{205f}\\x{3000}";
// Oniguruma's Unicode \w, as a class body.
constexpr std::string_view kWordSet = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// One JIT stack per thread, shared by every Regex: JIT stacks must not be used concurrently.
struct JitStack {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  JitStack() {
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    if (stack && context) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~JitStack() {
    if (stack) pcre2_jit_stack_free(stack);
    if (context) pcre2_match_context_free(context);
  }
};

pcre2_match_context* thread_match_context() {
  thread_local JitStack jit;
  return jit.context;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() {
    if (code) pcre2_code_free(code);
  }
};

std::string translate_oniguruma(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t class_start = 0;  // index just after '[' or '[^'
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      ++i;
      if (n == 's' || n == 'w') {
        const std::string_view set = n == 's' ? kSpaceSet : kWordSet;
        if (in_class) {
          out += set;
        } else {
          out += '[';
          out += set;
          out += ']';
        }
      } else if ((n == 'S' || n == 'W') && !in_class) {
        out += "[^";
        out += n == 'S' ? kSpaceSet : kWordSet;
        out += ']';
      } else if (n == 'Q') {  // \Q...\E: copied as is
        const size_t end = p.find("\\E", i + 1);
        const size_t stop = end == std::string_view::npos ? p.size() : end + 2;
        out += "\\Q";
        out.append(p.substr(i + 1, stop - (i + 1)));
        i = stop - 1;
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    if (!in_class) {
      if (c == '[') {
        in_class = true;
        out += c;
        if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
        class_start = i + 1;
        continue;
      }
    } else {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX class [:name:]
        const size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          out.append(p.substr(i, end + 2 - i));
          i = end + 1;
          continue;
        }
      }
      if (c == ']' && i != class_start) in_class = false;
    }
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view oniguruma_pattern)
    : pattern_(oniguruma_pattern), code_(std::make_unique<Code>()) {
  const std::string translated = translate_oniguruma(oniguruma_pattern);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (!code_->code) {
    throw Error("cannot compile tokenizer regex '" + pattern_ + "': " + pcre2_message(error) +
                " at offset " + std::to_string(error_offset));
  }
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
}

Regex::~Regex() = default;

void Regex::find_all(std::string_view subject, Matches& out) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (!md) throw Error("out of memory while matching a tokenizer regex");
  pcre2_match_context* context = thread_match_context();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t start = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (start <= subject.size()) {
    const int rc =
        pcre2_match(code_->code, s, subject.size(), start, PCRE2_NO_UTF_CHECK, md, context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(md);
      throw Error("tokenizer regex '" + pattern_ + "' failed: " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (b == e && have_last && last_end == e) {
      if (start >= subject.size()) break;
      size_t step = 1;
      while (start + step < subject.size() &&
             (static_cast<unsigned char>(subject[start + step]) & 0xC0) == 0x80) {
        ++step;
      }
      start += step;
      continue;
    }
    out.emplace_back(b, e);
    have_last = true;
    last_end = e;
    start = e;
  }
  pcre2_match_data_free(md);
}

void find_literal(std::string_view subject, std::string_view needle, Matches& out) {
  if (needle.empty()) return;
  size_t pos = 0;
  while ((pos = subject.find(needle, pos)) != std::string_view::npos) {
    out.emplace_back(pos, pos + needle.size());
    pos += needle.size();
  }
}

Pattern Pattern::literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

Pattern Pattern::regex(std::string_view oniguruma_pattern) {
  Pattern p;
  p.regex_ = std::make_shared<const Regex>(oniguruma_pattern);
  return p;
}

void Pattern::find_all(std::string_view subject, Matches& out) const {
  if (regex_) {
    regex_->find_all(subject, out);
  } else {
    find_literal(subject, literal_, out);
  }
}

}  // namespace s3::tok
