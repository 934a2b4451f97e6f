using NbdFast.Protocol;
using static NbdFast.Tests.Protocol.WireBytes;

namespace NbdFast.Tests.Protocol;

/// <summary>
/// Byte-vector tests for the 28-byte compact and 32-byte extended request headers ("Request message"):
/// magic (32), command flags (16), type (16), cookie (64), offset (64), length (32 compact / 64 extended).
/// </summary>
public class RequestHeaderCodecTests
{
    private const string Cookie = "0102030405060708";
    private const string Offset = "1122334455667788";

    // FUA write of 64 KiB at offset 0x1122334455667788, cookie 0x0102030405060708.
    private static readonly byte[] CompactWrite = Hex("25609513 0001 0001" + Cookie + Offset + "00010000");

    // REQ_ONE block status over 2^32 bytes (an effect length only an extended header can carry).
    private static readonly byte[] ExtendedBlockStatus = Hex("21E41C71 0008 0007" + Cookie + Offset + "0000000100000000");

    [Theory]
    [InlineData(false, 28)]
    [InlineData(true, 32)]
    public void HeaderSizeFollowsNegotiatedStyle(bool extended, int size) =>
        Assert.Equal(size, RequestHeaderCodec.HeaderSize(extended));

    // ---- Compact ------------------------------------------------------------------------------------------------

    [Fact]
    public void WriteCompact()
    {
        var buffer = NewBuffer();
        var request = new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, 0x0102030405060708UL, 0x1122334455667788UL, 0x00010000);
        int n = RequestHeaderCodec.Write(buffer, request, extended: false);
        AssertWritten(CompactWrite, buffer, n);
    }

    [Fact]
    public void WriteCompactWithMaximumThirtyTwoBitLength()
    {
        var buffer = NewBuffer();
        var request = new NbdRequest(NbdCommandFlags.None, NbdCommand.Trim, 0xFFFFFFFFFFFFFFFFUL, 0, uint.MaxValue);
        int n = RequestHeaderCodec.Write(buffer, request, extended: false);
        AssertWritten(Hex("25609513 0000 0004 FFFFFFFFFFFFFFFF 0000000000000000 FFFFFFFF"), buffer, n);
    }

    [Fact]
    public void WriteCompactRejectsLengthBeyondThirtyTwoBits()
    {
        var buffer = NewBuffer();
        var request = new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, 1, 0, 0x100000000UL);
        Assert.Throws<ArgumentOutOfRangeException>(() => RequestHeaderCodec.Write(buffer, request, extended: false));
    }

    [Fact]
    public void ReadCompact()
    {
        Assert.True(RequestHeaderCodec.TryRead(CompactWrite, extended: false, out NbdRequest request));
        Assert.Equal(NbdCommandFlags.Fua, request.Flags);
        Assert.Equal(NbdCommand.Write, request.Command);
        Assert.Equal(0x0102030405060708UL, request.Cookie);
        Assert.Equal(0x1122334455667788UL, request.Offset);
        Assert.Equal(0x00010000UL, request.Length);
    }

    [Fact]
    public void ReadCompactIgnoresBytesAfterTheHeader()
    {
        // The write payload (here DE AD ...) follows the header and must not leak into the length.
        byte[] withPayload = Concat(Hex("25609513 0000 0000" + Cookie + Offset + "00000200"), Hex("DEADBEEFDEADBEEF"));
        Assert.True(RequestHeaderCodec.TryRead(withPayload, extended: false, out NbdRequest request));
        Assert.Equal(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, 0x0102030405060708UL, 0x1122334455667788UL, 0x200), request);
    }

    [Fact]
    public void ReadCompactKeepsUnknownCommandAndFlags()
    {
        Assert.True(RequestHeaderCodec.TryRead(Hex("25609513 8040 00FF" + Cookie + Offset + "00000000"), extended: false, out NbdRequest request));
        Assert.Equal(0x8040, (int)request.Flags);
        Assert.Equal(0x00FF, (int)request.Command);
    }

    [Theory]
    [InlineData("25609514")] // off by one
    [InlineData("12560953")] // historic NBD_REQUEST_MAGIC
    [InlineData("13956025")] // byte-reversed
    [InlineData("67446698")] // a reply magic
    [InlineData("21E41C71")] // extended magic is not accepted in compact mode
    public void ReadCompactRejectsWrongMagic(string magic) =>
        Assert.False(RequestHeaderCodec.TryRead(Hex(magic + "0000 0000" + Cookie + Offset + "00000000"), extended: false, out _));

    [Fact]
    public void CompactRoundTrip()
    {
        var buffer = new byte[28];
        var request = new NbdRequest(NbdCommandFlags.NoHole | NbdCommandFlags.FastZero, NbdCommand.WriteZeroes, 42, 4096, 8192);
        Assert.Equal(28, RequestHeaderCodec.Write(buffer, request, extended: false));
        Assert.True(RequestHeaderCodec.TryRead(buffer, extended: false, out NbdRequest decoded));
        Assert.Equal(request, decoded);
    }

    // ---- Extended -----------------------------------------------------------------------------------------------

    [Fact]
    public void WriteExtended()
    {
        var buffer = NewBuffer();
        var request = new NbdRequest(NbdCommandFlags.ReqOne, NbdCommand.BlockStatus, 0x0102030405060708UL, 0x1122334455667788UL, 0x100000000UL);
        int n = RequestHeaderCodec.Write(buffer, request, extended: true);
        AssertWritten(ExtendedBlockStatus, buffer, n);
    }

    [Fact]
    public void WriteExtendedWithPayloadLength()
    {
        var buffer = NewBuffer();
        var request = new NbdRequest(NbdCommandFlags.PayloadLen | NbdCommandFlags.Fua, NbdCommand.Write, 7, 0x0000000200000000UL, 0x00001000);
        int n = RequestHeaderCodec.Write(buffer, request, extended: true);
        AssertWritten(Hex("21E41C71 0021 0001 0000000000000007 0000000200000000 0000000000001000"), buffer, n);
    }

    [Fact]
    public void ReadExtended()
    {
        Assert.True(RequestHeaderCodec.TryRead(ExtendedBlockStatus, extended: true, out NbdRequest request));
        Assert.Equal(NbdCommandFlags.ReqOne, request.Flags);
        Assert.Equal(NbdCommand.BlockStatus, request.Command);
        Assert.Equal(0x0102030405060708UL, request.Cookie);
        Assert.Equal(0x1122334455667788UL, request.Offset);
        Assert.Equal(0x0000000100000000UL, request.Length);
    }

    [Fact]
    public void ReadExtendedFullSixtyFourBitLength()
    {
        Assert.True(RequestHeaderCodec.TryRead(Hex("21E41C71 0000 0004" + Cookie + Offset + "FEDCBA9876543210"), extended: true, out NbdRequest request));
        Assert.Equal(NbdCommand.Trim, request.Command);
        Assert.Equal(0xFEDCBA9876543210UL, request.Length);
    }

    [Theory]
    [InlineData("21E41C72")] // off by one
    [InlineData("711CE421")] // byte-reversed
    [InlineData("6E8A278C")] // the extended reply magic
    [InlineData("25609513")] // compact magic is not accepted in extended mode
    public void ReadExtendedRejectsWrongMagic(string magic) =>
        Assert.False(RequestHeaderCodec.TryRead(Hex(magic + "0000 0000" + Cookie + Offset + "0000000000000000"), extended: true, out _));

    [Fact]
    public void ExtendedRoundTrip()
    {
        var buffer = new byte[32];
        var request = new NbdRequest(NbdCommandFlags.PayloadLen, NbdCommand.BlockStatus, ulong.MaxValue, ulong.MaxValue - 1, 16);
        Assert.Equal(32, RequestHeaderCodec.Write(buffer, request, extended: true));
        Assert.True(RequestHeaderCodec.TryRead(buffer, extended: true, out NbdRequest decoded));
        Assert.Equal(request, decoded);
    }

    [Fact]
    public void ReadingAHeaderShorterThanItsStyleThrows()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RequestHeaderCodec.TryRead(CompactWrite.AsSpan(0, 27), extended: false, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => RequestHeaderCodec.TryRead(CompactWrite, extended: true, out _));
    }
}
