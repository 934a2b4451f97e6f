namespace NbdFast.Protocol;

/// <summary>Reply types of fixed-newstyle option replies. Errors have bit 31 set.</summary>
public enum NbdOptionReplyType : uint
{
    /// <summary>NBD_REP_ACK.</summary>
    Ack = 1,
    /// <summary>NBD_REP_SERVER: one export in a LIST reply.</summary>
    Server = 2,
    /// <summary>NBD_REP_INFO: one information item.</summary>
    Info = 3,
    /// <summary>NBD_REP_META_CONTEXT: one metadata context.</summary>
    MetaContext = 4,
    /// <summary>NBD_REP_ERR_UNSUP: unknown option.</summary>
    ErrUnsup = ErrorBit | 1,
    /// <summary>NBD_REP_ERR_POLICY: forbidden by server policy.</summary>
    ErrPolicy = ErrorBit | 2,
    /// <summary>NBD_REP_ERR_INVALID: syntactically or semantically invalid.</summary>
    ErrInvalid = ErrorBit | 3,
    /// <summary>NBD_REP_ERR_PLATFORM: unsupported on this platform.</summary>
    ErrPlatform = ErrorBit | 4,
    /// <summary>NBD_REP_ERR_TLS_REQD: TLS must be negotiated first.</summary>
    ErrTlsReqd = ErrorBit | 5,
    /// <summary>NBD_REP_ERR_UNKNOWN: no such export.</summary>
    ErrUnknown = ErrorBit | 6,
    /// <summary>NBD_REP_ERR_SHUTDOWN: the server is shutting down.</summary>
    ErrShutdown = ErrorBit | 7,
    /// <summary>NBD_REP_ERR_BLOCK_SIZE_REQD: the client must request NBD_INFO_BLOCK_SIZE.</summary>
    ErrBlockSizeReqd = ErrorBit | 8,
    /// <summary>NBD_REP_ERR_TOO_BIG: request or reply too large.</summary>
    ErrTooBig = ErrorBit | 9,
    /// <summary>NBD_REP_ERR_EXT_HEADER_REQD: extended headers required (or cannot downgrade).</summary>
    ErrExtHeaderReqd = ErrorBit | 10,
    /// <summary>Bit 31: marks an error reply.</summary>
    ErrorBit = 0x8000_0000,
}
