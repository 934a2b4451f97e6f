using NbdFast.Protocol;
using static NbdFast.Tests.Protocol.WireBytes;

namespace NbdFast.Tests.Protocol;

/// <summary>
/// Byte-vector tests for the fixed parts of chunk payloads ("Structured reply types"): OFFSET_DATA,
/// OFFSET_HOLE, ERROR / ERROR_OFFSET and the 32- and 64-bit block status descriptors.
/// </summary>
public class ReplyPayloadTests
{
    [Fact]
    public void OffsetDataPrefixIsTheSixtyFourBitOffset()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteOffsetDataPrefix(buffer, 0x0123456789ABCDEFUL);
        AssertWritten(Hex("0123456789ABCDEF"), buffer, n);
    }

    [Fact]
    public void OffsetHoleIsOffsetThenThirtyTwoBitSize()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteOffsetHole(buffer, 0x0123456789ABCDEFUL, 0x00010000);
        AssertWritten(Hex("0123456789ABCDEF 00010000"), buffer, n);
    }

    // ---- ERROR and ERROR_OFFSET --------------------------------------------------------------------------------

    [Fact]
    public void ErrorPayloadWithoutOffset()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, "read failed");
        AssertWritten(Concat(Hex("00000005 000B"), Ascii("read failed")), buffer, n);
    }

    [Fact]
    public void ErrorPayloadWithOffsetPutsOffsetAfterMessage()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.Invalid, "bad", offset: 0x0000000000000200UL);
        AssertWritten(Hex("00000016 0003 626164 0000000000000200"), buffer, n);
    }

    [Fact]
    public void ErrorPayloadWithEmptyMessage()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.Perm, "");
        AssertWritten(Hex("00000001 0000"), buffer, n);
    }

    [Fact]
    public void ErrorOffsetPayloadWithEmptyMessageIsFourteenBytes()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.NoSpace, "", offset: 0xFEDCBA9876543210UL);
        AssertWritten(Hex("0000001C 0000 FEDCBA9876543210"), buffer, n);
    }

    [Fact]
    public void ErrorPayloadWithOffsetZeroStillWritesTheOffset()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.Overflow, "x", offset: 0);
        AssertWritten(Hex("0000004B 0001 78 0000000000000000"), buffer, n);
    }

    [Fact]
    public void ErrorMessageIsTruncatedToMaxMessageBytes()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, "abcdefgh", maxMessageBytes: 5);
        AssertWritten(Hex("00000005 0005 6162636465"), buffer, n);
    }

    [Fact]
    public void TruncatedMessageIsFollowedByTheOffset()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, "abcdefgh", offset: 0x10, maxMessageBytes: 3);
        AssertWritten(Hex("00000005 0003 616263 0000000000000010"), buffer, n);
    }

    [Theory]
    // "abcé": é = C3 A9; 4 bytes allowed would split it, so only "abc" is kept.
    [InlineData("abc\u00e9", 4, "616263")]
    [InlineData("abc\u00e9", 5, "616263C3A9")]
    // "a€": € = E2 82 AC; 2 or 3 bytes allowed would split it.
    [InlineData("a\u20ac", 2, "61")]
    [InlineData("a\u20ac", 3, "61")]
    [InlineData("a\u20ac", 4, "61E282AC")]
    // "ab😀": U+1F600 = F0 9F 98 80 (a surrogate pair in UTF-16).
    [InlineData("ab\U0001F600", 3, "6162")]
    [InlineData("ab\U0001F600", 5, "6162")]
    [InlineData("ab\U0001F600", 6, "6162F09F9880")]
    [InlineData("\u00e9", 1, "")]
    [InlineData("abc", 0, "")]
    public void TruncationNeverSplitsAUtf8Character(string message, int maxMessageBytes, string expectedMessage)
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, message, maxMessageBytes: maxMessageBytes);
        int length = expectedMessage.Length / 2;
        AssertWritten(Hex($"00000005 {length:X4} {expectedMessage}"), buffer, n);
    }

    [Fact]
    public void DefaultMaxMessageIs256Bytes()
    {
        var buffer = NewBuffer(1024);
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, new string('x', 300));
        AssertWritten(Concat(Hex("00000005 0100"), Ascii(new string('x', 256))), buffer, n);
    }

    [Fact]
    public void MessageNeverExceedsTheSpecStringLimitEvenWhenMaxMessageBytesIsLarger()
    {
        // Spec: "message length MUST NOT exceed the 4096 bytes string length limit". Without the cap a
        // 70000-byte message would be written while the 16-bit length field wrapped to 4464.
        var buffer = NewBuffer(80000);
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, new string('x', 70000), offset: 0x0102030405060708UL, maxMessageBytes: 70000);
        AssertWritten(Concat(Hex("00000005 1000"), Ascii(new string('x', 4096)), Hex("0102030405060708")), buffer, n);
    }

    [Fact]
    public void MessageOfExactlyTheStringLimitIsKeptWhole()
    {
        var buffer = NewBuffer(5000);
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, new string('y', 4096), maxMessageBytes: 4096);
        AssertWritten(Concat(Hex("00000005 1000"), Ascii(new string('y', 4096))), buffer, n);
    }

    [Fact]
    public void MessageIsTruncatedToLeaveRoomForTheOffsetInASmallDestination()
    {
        // 6 fixed bytes + 4 message bytes + 8 offset bytes.
        var buffer = new byte[18];
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, "abcdefgh", offset: 0x0102030405060708UL);
        Assert.Equal(18, n);
        Assert.Equal(Convert.ToHexString(Hex("00000005 0004 61626364 0102030405060708")), Convert.ToHexString(buffer));
    }

    [Fact]
    public void MessageIsTruncatedToASmallDestinationWithoutOffset()
    {
        var buffer = new byte[9];
        int n = ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, "ab\u20ac");
        // Only 3 bytes of room: "ab" fits, "€" (3 bytes) would not.
        Assert.Equal(8, n);
        Assert.Equal(Convert.ToHexString(Hex("00000005 0002 6162")), Convert.ToHexString(buffer, 0, 8));
    }

    // ---- Block status descriptors -------------------------------------------------------------------------------

    [Fact]
    public void BlockDescriptorIsLengthThenStatus()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteBlockDescriptor(buffer, 0x00100000, (uint)(NbdAllocationState.Hole | NbdAllocationState.Zero));
        AssertWritten(Hex("00100000 00000003"), buffer, n);
    }

    [Fact]
    public void BlockDescriptorFieldOrder()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteBlockDescriptor(buffer, 0xA1B2C3D4, 0x00000002);
        AssertWritten(Hex("A1B2C3D4 00000002"), buffer, n);
    }

    [Fact]
    public void ExtendedBlockDescriptorIsSixtyFourBitLengthThenStatus()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteExtendedBlockDescriptor(buffer, 0x0000000100000000UL, 0x0000000000000003UL);
        AssertWritten(Hex("0000000100000000 0000000000000003"), buffer, n);
    }

    [Fact]
    public void ExtendedBlockDescriptorFieldOrder()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteExtendedBlockDescriptor(buffer, 0x0102030405060708UL, 0x1122334455667788UL);
        AssertWritten(Hex("0102030405060708 1122334455667788"), buffer, n);
    }
}
