namespace NbdFast.Protocol;

/// <summary>Request types of the transmission phase.</summary>
public enum NbdCommand : ushort
{
    /// <summary>NBD_CMD_READ.</summary>
    Read = 0,
    /// <summary>NBD_CMD_WRITE.</summary>
    Write = 1,
    /// <summary>NBD_CMD_DISC: soft disconnect.</summary>
    Disconnect = 2,
    /// <summary>NBD_CMD_FLUSH.</summary>
    Flush = 3,
    /// <summary>NBD_CMD_TRIM.</summary>
    Trim = 4,
    /// <summary>NBD_CMD_CACHE.</summary>
    Cache = 5,
    /// <summary>NBD_CMD_WRITE_ZEROES.</summary>
    WriteZeroes = 6,
    /// <summary>NBD_CMD_BLOCK_STATUS.</summary>
    BlockStatus = 7,
    /// <summary>NBD_CMD_RESIZE (experimental, not supported).</summary>
    Resize = 8,
}
