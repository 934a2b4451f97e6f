namespace NbdFast.Protocol;

/// <summary>Handshake flags sent by the server in the greeting (16 bits).</summary>
[Flags]
public enum NbdHandshakeFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>NBD_FLAG_FIXED_NEWSTYLE.</summary>
    FixedNewstyle = 1 << 0,
    /// <summary>NBD_FLAG_NO_ZEROES.</summary>
    NoZeroes = 1 << 1,
}

/// <summary>Client flags sent in reply to the greeting (32 bits).</summary>
[Flags]
public enum NbdClientFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>NBD_FLAG_C_FIXED_NEWSTYLE.</summary>
    FixedNewstyle = 1 << 0,
    /// <summary>NBD_FLAG_C_NO_ZEROES.</summary>
    NoZeroes = 1 << 1,
    /// <summary>Every bit the server understands.</summary>
    Known = FixedNewstyle | NoZeroes,
}

/// <summary>Transmission flags describing an export (16 bits).</summary>
[Flags]
public enum NbdTransmissionFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>NBD_FLAG_HAS_FLAGS: always set.</summary>
    HasFlags = 1 << 0,
    /// <summary>NBD_FLAG_READ_ONLY.</summary>
    ReadOnly = 1 << 1,
    /// <summary>NBD_FLAG_SEND_FLUSH.</summary>
    SendFlush = 1 << 2,
    /// <summary>NBD_FLAG_SEND_FUA.</summary>
    SendFua = 1 << 3,
    /// <summary>NBD_FLAG_ROTATIONAL.</summary>
    Rotational = 1 << 4,
    /// <summary>NBD_FLAG_SEND_TRIM.</summary>
    SendTrim = 1 << 5,
    /// <summary>NBD_FLAG_SEND_WRITE_ZEROES.</summary>
    SendWriteZeroes = 1 << 6,
    /// <summary>NBD_FLAG_SEND_DF.</summary>
    SendDf = 1 << 7,
    /// <summary>NBD_FLAG_CAN_MULTI_CONN.</summary>
    CanMultiConn = 1 << 8,
    /// <summary>NBD_FLAG_SEND_RESIZE (experimental, never advertised).</summary>
    SendResize = 1 << 9,
    /// <summary>NBD_FLAG_SEND_CACHE.</summary>
    SendCache = 1 << 10,
    /// <summary>NBD_FLAG_SEND_FAST_ZERO.</summary>
    SendFastZero = 1 << 11,
    /// <summary>NBD_FLAG_BLOCK_STATUS_PAYLOAD (extended headers only).</summary>
    BlockStatusPayload = 1 << 12,
}

/// <summary>Command flags carried by each request (16 bits).</summary>
[Flags]
public enum NbdCommandFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>NBD_CMD_FLAG_FUA.</summary>
    Fua = 1 << 0,
    /// <summary>NBD_CMD_FLAG_NO_HOLE.</summary>
    NoHole = 1 << 1,
    /// <summary>NBD_CMD_FLAG_DF.</summary>
    DontFragment = 1 << 2,
    /// <summary>NBD_CMD_FLAG_REQ_ONE.</summary>
    ReqOne = 1 << 3,
    /// <summary>NBD_CMD_FLAG_FAST_ZERO.</summary>
    FastZero = 1 << 4,
    /// <summary>NBD_CMD_FLAG_PAYLOAD_LEN (extended headers only).</summary>
    PayloadLen = 1 << 5,
}

/// <summary>Flags of a structured or extended reply chunk (16 bits).</summary>
[Flags]
public enum NbdReplyFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>NBD_REPLY_FLAG_DONE: the final chunk of a reply.</summary>
    Done = 1 << 0,
}

/// <summary>Status bits of the <c>base:allocation</c> metadata context.</summary>
[Flags]
public enum NbdAllocationState : uint
{
    /// <summary>Allocated data.</summary>
    Data = 0,
    /// <summary>NBD_STATE_HOLE: unallocated.</summary>
    Hole = 1 << 0,
    /// <summary>NBD_STATE_ZERO: reads as zeroes.</summary>
    Zero = 1 << 1,
}
