namespace NbdFast.Negotiation;

/// <summary>What option haggling agreed on; the transmission phase obeys it.</summary>
internal sealed class NegotiatedFeatures
{
    /// <summary>The id handed out for <c>base:allocation</c> by SET_META_CONTEXT.</summary>
    public const uint AllocationContextId = 1;

    public bool FixedNewstyle { get; set; }
    public bool NoZeroes { get; set; }
    public bool StructuredReplies { get; set; }
    public bool ExtendedHeaders { get; set; }

    /// <summary>The export name the last successful SET_META_CONTEXT selected <c>base:allocation</c> for, if any.</summary>
    public string? AllocationContextExport { get; set; }

    /// <summary>Structured or extended replies: chunks with payloads may be sent.</summary>
    public bool ReplyChunks => StructuredReplies || ExtendedHeaders;

    /// <summary>True when BLOCK_STATUS may be used on <paramref name="exportName"/>.</summary>
    public bool HasAllocationContext(string exportName) => ReplyChunks && AllocationContextExport == exportName;

    /// <summary>Forgets every negotiated state (after STARTTLS, as the spec requires).</summary>
    public void ResetAfterTls()
    {
        StructuredReplies = false;
        ExtendedHeaders = false;
        AllocationContextExport = null;
    }
}

/// <summary>The NBD_INFO items a client asked for in INFO/GO.</summary>
[Flags]
internal enum InfoRequests
{
    None = 0,
    Name = 1,
    Description = 2,
    BlockSize = 4,
}
