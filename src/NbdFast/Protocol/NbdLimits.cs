namespace NbdFast.Protocol;

/// <summary>Sizes fixed by the protocol and the defaults NbdFast enforces.</summary>
public static class NbdLimits
{
    /// <summary>Size of the fixed-newstyle greeting: NBDMAGIC, IHAVEOPT, handshake flags.</summary>
    public const int GreetingSize = 18;
    /// <summary>Size of an option request header: IHAVEOPT, option, length.</summary>
    public const int OptionHeaderSize = 16;
    /// <summary>Size of an option reply header: magic, option, type, length.</summary>
    public const int OptionReplyHeaderSize = 20;
    /// <summary>Size of the reply to NBD_OPT_EXPORT_NAME without the zero padding.</summary>
    public const int ExportNameReplySize = 10;
    /// <summary>Zero padding after the EXPORT_NAME reply unless NO_ZEROES was negotiated.</summary>
    public const int ExportNameReplyPadding = 124;
    /// <summary>Compact request header size.</summary>
    public const int RequestHeaderSize = 28;
    /// <summary>Extended request header size.</summary>
    public const int ExtendedRequestHeaderSize = 32;
    /// <summary>Simple reply header size.</summary>
    public const int SimpleReplyHeaderSize = 16;
    /// <summary>Structured reply chunk header size.</summary>
    public const int StructuredReplyHeaderSize = 20;
    /// <summary>Extended reply chunk header size.</summary>
    public const int ExtendedReplyHeaderSize = 32;
    /// <summary>Longest string (export name, description, query) the spec requires a server to accept.</summary>
    public const int MaxStringLength = 4096;
    /// <summary>Default maximum payload of a request or reply: 32 MiB.</summary>
    public const int DefaultMaxPayload = 32 * 1024 * 1024;
    /// <summary>Minimum block size every client may assume without NBD_INFO_BLOCK_SIZE.</summary>
    public const int DefaultMinBlockSize = 1;
    /// <summary>Preferred block size when the device gives none.</summary>
    public const int DefaultPreferredBlockSize = 4096;
    /// <summary>The only metadata context NbdFast serves.</summary>
    public const string BaseAllocation = "base:allocation";
}
