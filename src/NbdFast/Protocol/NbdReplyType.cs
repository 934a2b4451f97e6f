namespace NbdFast.Protocol;

/// <summary>Chunk types of structured and extended replies.</summary>
public enum NbdReplyType : ushort
{
    /// <summary>NBD_REPLY_TYPE_NONE: no payload, final chunk.</summary>
    None = 0,
    /// <summary>NBD_REPLY_TYPE_OFFSET_DATA: 64-bit offset then data.</summary>
    OffsetData = 1,
    /// <summary>NBD_REPLY_TYPE_OFFSET_HOLE: 64-bit offset and 32-bit hole size.</summary>
    OffsetHole = 2,
    /// <summary>NBD_REPLY_TYPE_BLOCK_STATUS: context id then 32-bit extents.</summary>
    BlockStatus = 5,
    /// <summary>NBD_REPLY_TYPE_BLOCK_STATUS_EXT: context id, count then 64-bit extents.</summary>
    BlockStatusExt = 6,
    /// <summary>NBD_REPLY_TYPE_ERROR: error value and message.</summary>
    Error = ErrorBit | 1,
    /// <summary>NBD_REPLY_TYPE_ERROR_OFFSET: error value, message and offset.</summary>
    ErrorOffset = ErrorBit | 2,
    /// <summary>Bit 15: marks an error chunk.</summary>
    ErrorBit = 0x8000,
}
