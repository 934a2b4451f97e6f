namespace NbdFast.Protocol;

/// <summary>Option types sent by the client during option haggling.</summary>
public enum NbdOption : uint
{
    /// <summary>NBD_OPT_EXPORT_NAME: choose an export and enter transmission (no error path).</summary>
    ExportName = 1,
    /// <summary>NBD_OPT_ABORT: soft disconnect during the handshake.</summary>
    Abort = 2,
    /// <summary>NBD_OPT_LIST: list the exports.</summary>
    List = 3,
    /// <summary>NBD_OPT_PEEK_EXPORT: withdrawn, never supported.</summary>
    PeekExport = 4,
    /// <summary>NBD_OPT_STARTTLS: upgrade the connection to TLS.</summary>
    StartTls = 5,
    /// <summary>NBD_OPT_INFO: describe an export without entering transmission.</summary>
    Info = 6,
    /// <summary>NBD_OPT_GO: describe an export and enter transmission.</summary>
    Go = 7,
    /// <summary>NBD_OPT_STRUCTURED_REPLY: enable structured replies.</summary>
    StructuredReply = 8,
    /// <summary>NBD_OPT_LIST_META_CONTEXT: list metadata contexts.</summary>
    ListMetaContext = 9,
    /// <summary>NBD_OPT_SET_META_CONTEXT: select metadata contexts.</summary>
    SetMetaContext = 10,
    /// <summary>NBD_OPT_EXTENDED_HEADERS: enable 64-bit extended headers.</summary>
    ExtendedHeaders = 11,
}
