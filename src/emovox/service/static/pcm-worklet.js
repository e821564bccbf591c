// AudioWorklet processor: hands the microphone's samples (mono, the context's rate)
// to the page in blocks of ~100 ms; the page converts them to 16-bit PCM.
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(Math.round(sampleRate / 10));
    this.fill = 0;
  }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      const ch = input[0];
      for (let i = 0; i < ch.length; i++) {
        let v = 0;
        for (let c = 0; c < input.length; c++) v += input[c][i];
        this.block[this.fill++] = v / input.length;
        if (this.fill === this.block.length) {
          this.port.postMessage(this.block.slice(0));
          this.fill = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("pcm-capture", PcmCapture);
