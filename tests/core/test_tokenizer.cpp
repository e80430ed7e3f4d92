#include <gtest/gtest.h>
TEST(Tok, Stub) {}
