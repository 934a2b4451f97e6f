using System.Buffers.Binary;
using System.Text.Unicode;
using CsCheck;
using NbdFast.Protocol;

namespace NbdFast.Tests.Fuzzing;

/// <summary>
/// Property tests of the wire codecs: every decoder accepts any bytes of its fixed size without throwing,
/// reports framing loss exactly when the magic is wrong, and inverts its encoder.
/// </summary>
public sealed class CodecProperties
{
    private const int Iterations = 2000;

    [Fact]
    public void ClientFlagsRoundTripAndDecodeAnyWord() =>
        Gen.UInt.Sample(value =>
        {
            byte[] buffer = new byte[4];
            HandshakeCodec.WriteClientFlags(buffer, (NbdClientFlags)value);
            Assert.Equal(value, (uint)HandshakeCodec.ReadClientFlags(buffer));
        }, iter: Iterations);

    [Fact]
    public void OptionHeadersRoundTripAndAnySixteenBytesDecode()
    {
        Gen.Select(Gen.UInt, Gen.UInt).Sample((option, length) =>
        {
            byte[] buffer = new byte[NbdLimits.OptionHeaderSize];
            Assert.Equal(NbdLimits.OptionHeaderSize, HandshakeCodec.WriteOptionHeader(buffer, option, length));
            Assert.Equal(new OptionRequestHeader(NbdMagic.IHaveOpt, option, length), HandshakeCodec.ReadOptionHeader(buffer));
        }, iter: Iterations);
        Gen.Byte.Array[NbdLimits.OptionHeaderSize].Sample(bytes =>
        {
            OptionRequestHeader header = HandshakeCodec.ReadOptionHeader(bytes);
            Assert.Equal(BinaryPrimitives.ReadUInt64BigEndian(bytes) == NbdMagic.IHaveOpt, header.HasValidMagic);
            Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(12)), header.Length);
        }, iter: Iterations);
    }

    [Fact]
    public void OptionReplyHeadersRoundTrip() =>
        Gen.Select(Gen.UInt, Gen.UInt, Gen.UInt).Sample((option, type, length) =>
        {
            byte[] buffer = new byte[NbdLimits.OptionReplyHeaderSize];
            HandshakeCodec.WriteOptionReplyHeader(buffer, option, (NbdOptionReplyType)type, length);
            OptionReplyHeader header = HandshakeCodec.ReadOptionReplyHeader(buffer);
            Assert.Equal(new OptionReplyHeader(NbdMagic.OptionReply, option, (NbdOptionReplyType)type, length), header);
            Assert.Equal((type & 0x8000_0000) != 0, header.IsError);
        }, iter: Iterations);

    [Fact]
    public void TextRepliesDeclareExactlyTheBytesTheyCarry() =>
        Gen.Select(Gen.String[0, 300], Gen.String[0, 300], Gen.UInt).Sample((name, text, option) =>
        {
            byte[] buffer = new byte[NbdLimits.OptionReplyHeaderSize + 8 + (name.Length + text.Length) * 3];
            AssertDeclared(buffer, HandshakeCodec.WriteError(buffer, option, NbdOptionReplyType.ErrInvalid, text), option);
            AssertDeclared(buffer, HandshakeCodec.WriteServer(buffer, option, name, text), option);
            Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(NbdLimits.OptionReplyHeaderSize)),
                (uint)System.Text.Encoding.UTF8.GetByteCount(name));
            AssertDeclared(buffer, HandshakeCodec.WriteInfoText(buffer, option, NbdInfoType.Name, text), option);
            AssertDeclared(buffer, HandshakeCodec.WriteMetaContext(buffer, option, 7, name), option);
        }, iter: 500);

    private static void AssertDeclared(byte[] buffer, int written, uint option)
    {
        OptionReplyHeader header = HandshakeCodec.ReadOptionReplyHeader(buffer);
        Assert.Equal(NbdMagic.OptionReply, header.Magic);
        Assert.Equal(option, header.Option);
        Assert.Equal((uint)(written - NbdLimits.OptionReplyHeaderSize), header.Length);
    }

    private static readonly Gen<NbdRequest> Requests =
        Gen.Select(Gen.UShort, Gen.UShort, Gen.ULong, Gen.ULong, Gen.ULong, (flags, command, cookie, offset, length) =>
            new NbdRequest((NbdCommandFlags)flags, (NbdCommand)command, cookie, offset, length));

    [Fact]
    public void RequestHeadersRoundTripInBothStyles() =>
        Gen.Select(Requests, Gen.Bool).Sample((request, extended) =>
        {
            byte[] buffer = new byte[NbdLimits.ExtendedRequestHeaderSize];
            if (!extended && request.Length > uint.MaxValue)
            {
                // A compact header cannot carry the length: refused, never truncated.
                Assert.Throws<ArgumentOutOfRangeException>(() => RequestHeaderCodec.Write(buffer, request, extended: false));
                return;
            }
            Assert.Equal(RequestHeaderCodec.HeaderSize(extended), RequestHeaderCodec.Write(buffer, request, extended));
            Assert.True(RequestHeaderCodec.TryRead(buffer, extended, out NbdRequest decoded));
            Assert.Equal(request, decoded);
            // The other style's magic never passes for this one: framing loss is detected.
            Assert.False(RequestHeaderCodec.TryRead(buffer, !extended, out _));
        }, iter: Iterations);

    [Fact]
    public void AnyRequestHeaderBytesDecodeAndOnlyTheRightMagicFrames() =>
        Gen.Select(Gen.Byte.Array[NbdLimits.ExtendedRequestHeaderSize], Gen.Bool, Gen.Bool).Sample((bytes, extended, plantMagic) =>
        {
            if (plantMagic)
            {
                BinaryPrimitives.WriteUInt32BigEndian(bytes, extended ? NbdMagic.ExtendedRequest : NbdMagic.Request);
            }
            bool framed = RequestHeaderCodec.TryRead(bytes.AsSpan(0, RequestHeaderCodec.HeaderSize(extended)), extended, out NbdRequest request);
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(bytes);
            Assert.Equal(magic == (extended ? NbdMagic.ExtendedRequest : NbdMagic.Request), framed);
            ulong length = extended ? BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(24)) : BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(24));
            Assert.Equal(length, request.Length);
            Assert.Equal(BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(16)), request.Offset);
        }, iter: Iterations);

    [Fact]
    public void ReplyHeadersRoundTripAndAnyPrefixDecodesSafely()
    {
        Gen.Select(Gen.Int[0, 2], Gen.UShort, Gen.UShort, Gen.ULong, Gen.ULong, Gen.UInt).Sample((style, flags, type, cookie, offset, length) =>
        {
            byte[] buffer = new byte[NbdLimits.ExtendedReplyHeaderSize];
            int size = style switch
            {
                0 => ReplyCodec.WriteSimple(buffer, (NbdError)length, cookie),
                1 => ReplyCodec.WriteStructured(buffer, (NbdReplyFlags)flags, (NbdReplyType)type, cookie, length),
                _ => ReplyCodec.WriteExtended(buffer, (NbdReplyFlags)flags, (NbdReplyType)type, cookie, offset, length),
            };
            for (int prefix = 0; prefix < size; prefix++)
            {
                Assert.Equal(0, ReplyCodec.TryRead(buffer.AsSpan(0, prefix), out _));
            }
            Assert.Equal(size, ReplyCodec.TryRead(buffer, out NbdReplyHeader header));
            Assert.Equal(cookie, header.Cookie);
            if (style == 0)
            {
                Assert.Equal((NbdError)length, header.Error);
            }
            else
            {
                Assert.Equal((ulong)length, header.Length);
                Assert.Equal((NbdReplyType)type, header.Type);
                Assert.Equal(style == 2 ? offset : 0, header.Offset);
            }
        }, iter: Iterations);
        Gen.Byte.Array[0, 40].Sample(bytes =>
        {
            int result = ReplyCodec.TryRead(bytes, out _);
            Assert.True(result is -1 or 0 or NbdLimits.SimpleReplyHeaderSize or NbdLimits.StructuredReplyHeaderSize or NbdLimits.ExtendedReplyHeaderSize);
            Assert.True(result <= bytes.Length);
        }, iter: Iterations);
    }

    [Fact]
    public void ErrorPayloadsAreBoundedWholeUtf8() =>
        Gen.Select(Gen.String[0, 2000], Gen.Int[0, 5000], Gen.Bool, Gen.ULong).Sample((message, maxBytes, withOffset, offset) =>
        {
            byte[] buffer = new byte[6 + NbdLimits.MaxStringLength + 8];
            int written = ReplyCodec.WriteErrorPayload(buffer, NbdError.Invalid, message, withOffset ? offset : null, maxBytes);
            int length = BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(4));
            Assert.True(length <= Math.Min(maxBytes, NbdLimits.MaxStringLength));
            Assert.Equal(6 + length + (withOffset ? 8 : 0), written);
            Assert.True(Utf8.IsValid(buffer.AsSpan(6, length)));
            if (withOffset)
            {
                Assert.Equal(offset, BinaryPrimitives.ReadUInt64BigEndian(buffer.AsSpan(6 + length)));
            }
        }, iter: 500);
}
