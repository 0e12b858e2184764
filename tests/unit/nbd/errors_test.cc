#include "nbd/errors.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "nbd/wire.h"

namespace blocksnap::nbd {
namespace {

TEST(ErrnoToNbd, Mapping) {
  EXPECT_EQ(ErrnoToNbdError(EPERM, kCmdWrite, 0), kEPERM);
  EXPECT_EQ(ErrnoToNbdError(EROFS, kCmdWrite, 0), kEPERM);
  EXPECT_EQ(ErrnoToNbdError(EIO, kCmdRead, 0), kEIO);
  EXPECT_EQ(ErrnoToNbdError(ENOMEM, kCmdRead, 0), kENOMEM);
  EXPECT_EQ(ErrnoToNbdError(ENOSPC, kCmdWrite, 0), kENOSPC);
  EXPECT_EQ(ErrnoToNbdError(EDQUOT, kCmdWrite, 0), kENOSPC);
  EXPECT_EQ(ErrnoToNbdError(EFBIG, kCmdWrite, 0), kENOSPC);
  EXPECT_EQ(ErrnoToNbdError(EINVAL, kCmdTrim, 0), kEINVAL);
  EXPECT_EQ(ErrnoToNbdError(ESHUTDOWN, kCmdRead, 0), kESHUTDOWN);
  EXPECT_EQ(ErrnoToNbdError(EBADF, kCmdRead, 0), kEIO);  // unknown -> EIO
}

TEST(ErrnoToNbd, NotSupOnlyForFastZero) {
  EXPECT_EQ(ErrnoToNbdError(ENOTSUP, kCmdWriteZeroes, kCmdFlagFastZero), kENOTSUP);
  EXPECT_EQ(ErrnoToNbdError(EOPNOTSUPP, kCmdWriteZeroes, kCmdFlagFastZero), kENOTSUP);
  EXPECT_EQ(ErrnoToNbdError(ENOTSUP, kCmdWriteZeroes, 0), kEINVAL);
  EXPECT_EQ(ErrnoToNbdError(ENOTSUP, kCmdTrim, 0), kEINVAL);
}

}  // namespace
}  // namespace blocksnap::nbd
