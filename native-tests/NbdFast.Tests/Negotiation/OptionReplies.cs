using System.Buffers.Binary;
using System.Text;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Negotiation;

/// <summary>Exact assertions on option replies.</summary>
internal static class OptionReplies
{
    /// <summary>Asserts the reply's magic, option, type and (when given) exact payload bytes.</summary>
    public static void AssertReply(RawOptionReply reply, uint option, NbdOptionReplyType type, byte[]? payload = null)
    {
        Assert.Equal(NbdMagic.OptionReply, reply.Header.Magic);
        Assert.Equal(option, reply.Header.Option);
        Assert.Equal(type, reply.Type);
        if (payload is not null)
        {
            Assert.Equal(Convert.ToHexString(payload), Convert.ToHexString(reply.Payload));
        }
    }

    public static void AssertReply(RawOptionReply reply, NbdOption option, NbdOptionReplyType type, byte[]? payload = null) =>
        AssertReply(reply, (uint)option, type, payload);

    /// <summary>Asserts exactly one reply: an ACK without payload.</summary>
    public static void AssertAck(IReadOnlyList<RawOptionReply> replies, NbdOption option) =>
        AssertReply(Assert.Single(replies), option, NbdOptionReplyType.Ack, []);

    /// <summary>Asserts exactly one reply: the given error, with a short, printable UTF-8 message.</summary>
    public static RawOptionReply AssertError(IReadOnlyList<RawOptionReply> replies, uint option, NbdOptionReplyType error)
    {
        RawOptionReply reply = Assert.Single(replies);
        AssertReply(reply, option, error);
        Assert.True(reply.Payload.Length < NbdLimits.MaxStringLength, $"error message of {reply.Payload.Length} bytes");
        string text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(reply.Payload);
        Assert.DoesNotContain(text, char.IsControl);
        return reply;
    }

    public static RawOptionReply AssertError(IReadOnlyList<RawOptionReply> replies, NbdOption option, NbdOptionReplyType error) =>
        AssertError(replies, (uint)option, error);

    /// <summary>The payload of NBD_INFO_EXPORT: type 0, size, flags.</summary>
    public static byte[] InfoExport(ulong size, ushort flags)
    {
        var payload = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(payload.AsSpan(2), size);
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(10), flags);
        return payload;
    }

    /// <summary>The payload of NBD_INFO_NAME or NBD_INFO_DESCRIPTION.</summary>
    public static byte[] InfoText(NbdInfoType type, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var payload = new byte[2 + bytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)type);
        bytes.CopyTo(payload, 2);
        return payload;
    }

    /// <summary>The payload of NBD_REP_SERVER: name length, name, description.</summary>
    public static byte[] Server(string name, string description)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        byte[] descriptionBytes = Encoding.UTF8.GetBytes(description);
        var payload = new byte[4 + nameBytes.Length + descriptionBytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)nameBytes.Length);
        nameBytes.CopyTo(payload, 4);
        descriptionBytes.CopyTo(payload, 4 + nameBytes.Length);
        return payload;
    }

    /// <summary>The payload of NBD_REP_META_CONTEXT: id and name.</summary>
    public static byte[] MetaContext(uint id, string name)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var payload = new byte[4 + nameBytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(payload, id);
        nameBytes.CopyTo(payload, 4);
        return payload;
    }
}
