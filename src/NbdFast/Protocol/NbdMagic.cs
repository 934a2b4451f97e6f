namespace NbdFast.Protocol;

/// <summary>The magic numbers that frame every NBD message on the wire.</summary>
public static class NbdMagic
{
    /// <summary>"NBDMAGIC": first 8 bytes of every handshake.</summary>
    public const ulong NbdMagicValue = 0x4e42444d41474943;
    /// <summary>"IHAVEOPT": second 8 bytes of the newstyle greeting and the prefix of every option request.</summary>
    public const ulong IHaveOpt = 0x49484156454F5054;
    /// <summary>Magic of the oldstyle handshake (never sent by NbdFast).</summary>
    public const ulong OldStyleMagic = 0x00420281861253;
    /// <summary>Prefix of every fixed-newstyle option reply.</summary>
    public const ulong OptionReply = 0x3e889045565a9;
    /// <summary>Compact (28-byte) request header.</summary>
    public const uint Request = 0x25609513;
    /// <summary>Extended (32-byte) request header.</summary>
    public const uint ExtendedRequest = 0x21e41c71;
    /// <summary>Simple (16-byte) reply header.</summary>
    public const uint SimpleReply = 0x67446698;
    /// <summary>Structured (20-byte) reply chunk header.</summary>
    public const uint StructuredReply = 0x668e33ef;
    /// <summary>Extended (32-byte) reply chunk header.</summary>
    public const uint ExtendedReply = 0x6e8a278c;
}
